# Sourced by the scripts that make virtualenvs (scripts/*-venv.sh, bench/peers/run.sh).
# make_venv TAG VENV: creates VENV (an existing one is kept) with Debian's /usr/bin/python3 where
# there is one, else the python3 on PATH; exits 1 naming what is missing, TAG first.
make_venv() {
    local tag=$1 venv=$2 python
    python=$(command -v python3 || true)
    [[ -x /usr/bin/python3 ]] && python=/usr/bin/python3
    [[ -n $python ]] || { echo "$tag: python3 is needed (apt-get install python3-venv)" >&2; exit 1; }
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv" \
        || { echo "$tag: cannot create $venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
}

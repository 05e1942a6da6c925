"""Offline checks of the Kubernetes recipe that kubernetes-validate does not make (run by validate.sh).

  python check_recipes.py dockerfile REPO DOCKERFILE      # syntax (BuildKit's parser), instructions,
                                                          # every COPY source exists in the build context
  python check_recipes.py configs [--require-configmap] OUT_DIR MANIFEST...   # writes each ConfigMap's *.json entry to OUT_DIR
                                                          # (for `troupe config --config` to decode strictly)

Prints one line per problem, naming the file and line, and exits 1 when there is any.
"""
import fnmatch
import glob
import os
import sys

import dockerfile
import yaml

INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}


def ignored_patterns(repo, path):
    # BuildKit reads DOCKERFILE.dockerignore beside the Dockerfile, else .dockerignore in the context.
    for candidate in (path + ".dockerignore", os.path.join(repo, ".dockerignore")):
        if os.path.exists(candidate):
            with open(candidate) as f:
                return [line.strip().rstrip("/") for line in f if line.strip() and not line.startswith("#")]
    return []


def check_dockerfile(repo, path):
    problems = []
    try:
        commands = dockerfile.parse_file(path)
    except dockerfile.GoParseError as error:
        return [f"{path}: does not parse: {error}"]
    if not commands or commands[0].cmd.upper() not in ("FROM", "ARG"):
        problems.append(f"{path}: must start with FROM")
    ignored = ignored_patterns(repo, path)
    stages = []
    final_user = None
    for c in commands:
        where = f"{path}:{c.start_line}"
        name = c.cmd.upper()
        if name not in INSTRUCTIONS:
            problems.append(f"{where}: unknown instruction {c.cmd}")
            continue
        if name == "FROM":
            stages.append(c.value[2] if len(c.value) == 3 and c.value[1].upper() == "AS" else None)
            final_user = None
        elif name == "USER":
            final_user = c.value[0]
        elif name in ("COPY", "ADD"):
            source_stage = [f.split("=", 1)[1] for f in c.flags if f.startswith("--from=")]
            if any(f == "--from" for f in c.flags):
                problems.append(f"{where}: --from needs =STAGE")
            if source_stage:
                if source_stage[0] not in stages[:-1]:
                    problems.append(f"{where}: --from={source_stage[0]} names no earlier stage")
                continue
            if len(c.value) < 2:
                problems.append(f"{where}: {name} needs a source and a destination")
            for source in c.value[:-1]:
                if not glob.glob(os.path.join(repo, source)):
                    problems.append(f"{where}: {name} source {source} does not exist in the build context {repo}")
                elif any(fnmatch.fnmatch(source.rstrip("/"), p) or source.startswith(p + "/") for p in ignored):
                    problems.append(f"{where}: {name} source {source} is excluded by the .dockerignore")
        elif name in ("ENTRYPOINT", "CMD") and not c.json:
            problems.append(f"{where}: {name} should use the exec form [\"...\"] so signals reach troupe")
    if final_user is None or final_user.split(":")[0] in ("0", "root"):
        problems.append(f"{path}: the final stage must set USER to a non-root user")
    return problems


def write_configs(out, manifests, require_configmap):
    problems, written = [], []
    for manifest in manifests:
        with open(manifest) as f:
            documents = [d for d in yaml.safe_load_all(f) if d]
        for d in documents:
            if d.get("kind") != "ConfigMap":
                continue
            for key, text in (d.get("data") or {}).items():
                if key.endswith(".json"):
                    target = os.path.join(out, f"{d['metadata']['name']}-{key}")
                    with open(target, "w") as f:
                        f.write(text)
                    written.append(target)
    for path in written:
        print(path)
    if not written and require_configmap:
        problems.append("no ConfigMap with a .json entry in " + " ".join(manifests))
    return problems


def main(argv):
    if len(argv) >= 3 and argv[0] == "dockerfile":
        problems = check_dockerfile(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "configs":
        require = argv[1] == "--require-configmap"
        rest = argv[2:] if require else argv[1:]
        if len(rest) < 2:
            print(__doc__, file=sys.stderr)
            return 2
        problems = write_configs(rest[0], rest[1:], require)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

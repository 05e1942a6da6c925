"""The run's reward definition, as the learner re-computes it from the tokens (docs/PROTOCOL.md §5.3,
docs/algorithms.md): answer extraction, answer equivalence, and the `verifiable`, `majority` and
`external` reward kinds without format or length shaping. A port of TroupeRL's AnswerExtractor,
AnswerEquivalence and MajorityVote; the learner refuses a group whose answer or reward differs
(REWARD_MISMATCH), so a divergence shows at once. Other kinds and shaping terms are refused up front."""
import math
import re
import unicodedata

SUPPORTED_KINDS = ("verifiable", "majority", "external")


class UnsupportedReward(Exception):
    pass


class RewardDefinition:
    def __init__(self, algorithm):
        """`algorithm`: the Welcome's config_json["algorithm"] (the resolved options)."""
        reward = algorithm.get("reward", {})
        self.kind = reward.get("kind")
        if self.kind not in SUPPORTED_KINDS:
            raise UnsupportedReward(f"algorithm.reward.kind {self.kind!r}: this actor implements {', '.join(SUPPORTED_KINDS)}")
        if reward.get("format", "none") != "none":
            raise UnsupportedReward(f"algorithm.reward.format {reward.get('format')!r}: this actor implements only \"none\"")
        for key in ("overlong_max_length", "overlong_cache", "truncation_length"):
            if reward.get(key) is not None:
                raise UnsupportedReward(f"algorithm.reward.{key} is set: this actor implements no length shaping")
        self.correct = float(reward.get("correct", 1.0))
        self.incorrect = float(reward.get("incorrect", 0.0))
        self.needs_entropies = bool(algorithm.get("advantage", {}).get("entropy_reshaping", False))

    def score(self, texts, ground_truth=None, external=None):
        """[(answer or None, reward, components)] for the completions' texts, in order."""
        answers = [extract_answer(t) for t in texts]
        if self.kind == "external":
            if external is None or any(r is None or not math.isfinite(r) for r in external):
                raise UnsupportedReward("reward.kind external needs a finite reward per sample from the sampler")
            base = list(external)
        elif self.kind == "majority":
            base = majority_rewards(answers, self.correct, self.incorrect)
        else:
            if ground_truth is None or canonical_key(ground_truth) == "":
                raise UnsupportedReward("reward.kind verifiable needs the prompt's reference_answer (a labelled run)")
            truth = canonical_key(ground_truth)
            base = [self.correct if a is not None and canonical_key(a) == truth else self.incorrect for a in answers]
        return [(a, r, {"base": r}) for a, r in zip(answers, base)]


def majority_rewards(answers, correct, incorrect):
    """TTRL's vote: the label is the most common valid answer (ties: the first seen); invalid answers never vote."""
    counts, first, keys = {}, {}, []
    for i, answer in enumerate(answers):
        key = canonical_key(answer) if answer is not None else ""
        keys.append(key)
        if key:
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, i)
    if not counts:
        return [incorrect] * len(answers)
    label = None
    for key in sorted(first, key=first.get):
        if label is None or counts[key] > counts[label]:
            label = key
    return [correct if k and k == label else incorrect for k in keys]


# --- answer extraction (AnswerExtractor) ---------------------------------------------------------------

def _is_ascii_digit(c):
    return "0" <= c <= "9"


def _is_letter(c):
    return unicodedata.category(c).startswith("L")


def _is_number(c):
    return unicodedata.category(c).startswith("N")


def extract_answer(text):
    for rule in (_boxed, _stated, _hash_marked, _last_number):
        found = rule(text)
        if found is not None:
            return found
    return None


def _braced(text, start):
    i = start
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    return None


def _boxed(text):
    best = None
    for marker in ("\\boxed", "\\fbox"):
        index = len(text) - len(marker)
        while index >= 0:
            if text.startswith(marker, index):
                content = _braced(text, index + len(marker))
                if content is not None:
                    if best is None or index > best[0]:
                        best = (index, content)
                    break
            index -= 1
    if best is None:
        return None
    content = best[1].strip()
    return content or None


def _strip_ws(s):
    return s.strip(" \t\n\r\x0b\x0c\x85\u2028\u2029\u00a0")


def _trim_answer(s):
    s = s.strip(" \t\u00a0")
    while s and (s[-1] in ".*" or s[-1].isspace()):
        s = s[:-1]
    while s and (s[0] == "*" or s[0].isspace()):
        s = s[1:]
    return s


def _non_empty(s):
    s = s.strip()
    return s or None


_NEWLINES = "\n\r\x0b\x0c\x85\u2028\u2029"


def _stated(text):
    lowered = text.lower()
    positions = [(lowered.rfind("answer is"), len("answer is")), (text.rfind("答案是"), len("答案是"))]
    positions = [p for p in positions if p[0] >= 0]
    if not positions:
        return None
    start, length = max(positions)
    rest = text[start + length:]
    i = 0
    while i < len(rest) and (rest[i] in ":：*" or rest[i].isspace()):
        i += 1
    rest = rest[i:]
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_):
            body = rest[len(open_):]
            end = body.find(close)
            return _non_empty(body[:end]) if end >= 0 else None
    line = re.split(f"[{_NEWLINES}]", rest, maxsplit=1)[0]
    cut = line.find(". ")
    if cut < 0:
        cut = line.find("。")
    if cut >= 0:
        line = line[:cut]
    return _non_empty(_trim_answer(line))


def _hash_marked(text):
    at = text.rfind("####")
    if at < 0:
        return None
    line = re.split(f"[{_NEWLINES}]", text[at + 4:], maxsplit=1)[0]
    return _non_empty(_trim_answer(line))


def _number_token(c, start):
    def digit(i):
        return i < len(c) and _is_ascii_digit(c[i])
    index, token = start, ""
    if c[index] == "-":
        previous = c[start - 1] if start > 0 else " "
        if _is_letter(previous) or _is_number(previous):
            return None
        if not (digit(index + 1) or (index + 2 < len(c) and c[index + 1] == "." and digit(index + 2))):
            return None
        token, index = "-", index + 1
    integer_start = index
    while digit(index):
        token += c[index]
        index += 1
    while (index - integer_start > 0 and index + 3 < len(c) and c[index] == "," and digit(index + 1) and digit(index + 2)
           and digit(index + 3) and not digit(index + 4)):
        token += c[index:index + 4]
        index += 4
    if index < len(c) and c[index] == "." and digit(index + 1):
        token += "."
        index += 1
        while digit(index):
            token += c[index]
            index += 1
    if not any(_is_number(ch) for ch in token):
        return None
    if index < len(c) and c[index] == "/" and digit(index + 1):
        token += "/"
        index += 1
        while digit(index):
            token += c[index]
            index += 1
    return token, index


def _last_number(text):
    last, index = None, 0
    while index < len(text):
        found = _number_token(text, index)
        if found:
            last, index = found
        else:
            index += 1
    return last


# --- answer equivalence (AnswerEquivalence) ------------------------------------------------------------

_REPLACEMENTS = [("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""), ("\\displaystyle", ""),
                 ("^{\\circ}", ""), ("^\\circ", ""), ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", ""),
                 ("\\%", ""), ("%", ""), ("\\$", ""), ("$", "")]


def _strip_enclosing_math(text):
    changed = True
    while changed:
        changed = False
        for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(text) >= len(open_) + len(close) and text.startswith(open_) and text.endswith(close):
                text = text[len(open_):len(text) - len(close)].strip(" \t")
                changed = True
                break
    return text


def _unwrap(command, text):
    while True:
        at = text.find(command + "{")
        if at < 0:
            return text
        depth, index = 1, at + len(command) + 1
        while index < len(text) and depth > 0:
            if text[index] == "{":
                depth += 1
            elif text[index] == "}":
                depth -= 1
            if depth > 0:
                index += 1
        if index >= len(text):
            return text
        text = text[:at] + text[at + len(command) + 1:index] + text[index + 1:]


def _drop_leading_assignment(text):
    trimmed = text.strip(" \t")
    if not trimmed or not (trimmed[0].isascii() and trimmed[0].isalpha()):
        return text
    after = trimmed[1:].lstrip(" ")
    if not after.startswith("="):
        return text
    value = after[1:].strip(" \t")
    return value if value else text


def normalize(answer):
    text = _strip_ws(answer)
    text = _strip_enclosing_math(text)
    for pattern, replacement in _REPLACEMENTS:
        text = text.replace(pattern, replacement)
    for wrapper in ("\\text", "\\textbf", "\\mathrm", "\\mbox"):
        text = _unwrap(wrapper, text)
    text = _drop_leading_assignment(text)
    text = "".join(ch for ch in text if not ch.isspace()).lower()
    while text.endswith("."):
        text = text[:-1]
    if len(text) == 3 and text[0] == "(" and text[2] == ")" and text[1].isalpha():
        text = text[1]
    return text


INT64_MAX = 2**63 - 1


def _fits(n):
    return -INT64_MAX <= n <= INT64_MAX


def _rational(numerator, denominator):
    if denominator == 0 or not _fits(numerator) or not _fits(denominator):
        return None
    g = math.gcd(abs(numerator), abs(denominator)) or 1
    sign = -1 if denominator < 0 else 1
    return (sign * numerator // g, sign * denominator // g)


def _grouped_digits(text):
    if "," not in text:
        return text if all(_is_ascii_digit(c) for c in text) else None
    groups = text.split(",")
    if not (1 <= len(groups[0]) <= 3) or not all(len(g) == 3 for g in groups[1:]):
        return None
    if not all(all(_is_ascii_digit(c) for c in g) for g in groups):
        return None
    return "".join(groups)


def _parse_decimal(text):
    negative = False
    if text[:1] in ("-", "+"):
        negative = text[0] == "-"
        text = text[1:]
    exponent = 0
    e = text.find("e")
    if e >= 0:
        try:
            value = int(text[e + 1:])
        except ValueError:
            return None
        if abs(value) > 30 or not re.fullmatch(r"[+-]?[0-9]+", text[e + 1:]):
            return None
        exponent, text = value, text[:e]
    pieces = text.split(".")
    if len(pieces) > 2:
        return None
    integer_part, fraction_part = pieces[0], (pieces[1] if len(pieces) == 2 else "")
    if not integer_part and not fraction_part:
        return None
    integer_digits = _grouped_digits(integer_part)
    if integer_digits is None or not all(_is_ascii_digit(c) for c in fraction_part):
        return None
    digits = (integer_digits + fraction_part).lstrip("0") or ("0" if (integer_digits + fraction_part) else "")
    if not digits:
        return None
    magnitude = int(digits)
    if magnitude > INT64_MAX:
        return None
    exponent -= len(fraction_part)
    numerator, denominator = (-magnitude if negative else magnitude), 1
    for _ in range(abs(exponent)):
        if exponent > 0:
            numerator *= 10
            if not _fits(numerator):
                return None
        else:
            denominator *= 10
            if not _fits(denominator):
                return None
    return _rational(numerator, denominator)


def _divide(a, b):
    if a is None or b is None or b[0] == 0:
        return None
    top, bottom = a[0] * b[1], a[1] * b[0]
    if not _fits(top) or not _fits(bottom):
        return None
    return _rational(top, bottom)


def _frac_argument(c, start):
    if start >= len(c):
        return None
    if c[start] == "{":
        close = c.find("}", start)
        return (c[start + 1:close], close + 1) if close >= 0 else None
    return (c[start], start + 1) if _is_number(c[start]) else None


def _parse_number(text):
    if text.startswith("\\frac") or text.startswith("-\\frac"):
        negative = text.startswith("-")
        body = text[6:] if negative else text[5:]
        first = _frac_argument(body, 0)
        if first is None:
            return None
        second = _frac_argument(body, first[1])
        if second is None or second[1] != len(body):
            return None
        a, b = _parse_decimal(first[0]), _parse_decimal(second[0])
        value = _divide(a, b)
        if value is None:
            return None
        return (-value[0], value[1]) if negative else value
    parts = text.split("/")
    if len(parts) == 2:
        return _divide(_parse_decimal(parts[0]), _parse_decimal(parts[1]))
    return _parse_decimal(text) if len(parts) == 1 else None


def canonical_key(answer):
    normalized = normalize(answer)
    number = _parse_number(normalized)
    if number is not None:
        return str(number[0]) if number[1] == 1 else f"{number[0]}/{number[1]}"
    return normalized

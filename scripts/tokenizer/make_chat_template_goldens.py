#!/usr/bin/env python3
"""Render chat templates with jinja2 exactly as Hugging Face's apply_chat_template sets it up, and
write the results as goldens for the Swift chat-template interpreter (ChatTemplateGoldenTests).

    python3 -m venv .build/goldens-venv
    .build/goldens-venv/bin/pip install jinja2==3.1.4
    .build/goldens-venv/bin/python scripts/tokenizer/make_chat_template_goldens.py

Writes Tests/TroupeTokenizerTests/Goldens/chat-templates/jinja2-goldens.json: a list of
{"name", "source" (or "template_file", a template of this folder), "messages", "add_generation_prompt",
"variables", "date" (what strftime_now writes; absent: strftime_now undefined), "expected"}. Deterministic: the
whitespace cases come from a seeded generator. Cases:
  real-*        the SmolLM2-Instruct and Qwen2.5-Instruct templates on several conversations
  whitespace-*  random mixes of text, {% if %}, {{ }}, {# #} with every whitespace-control form,
                CR LF newlines and trailing newlines (trim_blocks, lstrip_blocks, keep_trailing_newline)
  expression-*  operators, filters, tests, methods, loops and scoping
  date-*        strftime_now at fixed dates, and templates that test whether it is defined
"""
import datetime
import json
import os
import random

from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.path.join(ROOT, "Tests", "TroupeTokenizerTests", "Goldens", "chat-templates")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # As transformers defines it for chat templates.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise RuntimeError(message)


# As transformers sets up its environment: loop controls, raise_exception. strftime_now is passed per case
# (transformers reads the clock there; the goldens fix the moment).
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

cases = []


def add(name, source, messages, generation=True, variables=None, template_file=None, date=None):
    variables = variables or {}
    extra = {"strftime_now": lambda format: date.strftime(format)} if date else {}
    expected = env.from_string(source).render(messages=messages, add_generation_prompt=generation, tools=None,
                                              documents=None, **variables, **extra)
    case = {"name": name, "messages": messages, "add_generation_prompt": generation, "variables": variables,
            "expected": expected}
    if date:
        case["date"] = date.isoformat()
    # The real templates are named by their file in this folder rather than repeated.
    if template_file:
        case["template_file"] = template_file
    else:
        case["source"] = source
    cases.append(case)


SYSTEM = {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."}
USER = {"role": "user", "content": "What is 2+3?"}
conversations = {
    "user": [USER],
    "system-user": [SYSTEM, USER],
    "multi-turn": [SYSTEM, USER, {"role": "assistant", "content": "\\boxed{5}"}, {"role": "user", "content": "And 3+4?"}],
    "unicode": [{"role": "user", "content": "Combien font 2+3 ? Réponds en français.\n\nMerci ✓"}],
    "tools": [USER, {"role": "assistant", "content": "Checking."}, {"role": "tool", "content": "5"},
              {"role": "tool", "content": "five"}, {"role": "user", "content": "So?"}],
}
for template in ["smollm2-instruct", "qwen2.5-instruct"]:
    with open(os.path.join(DIR, template + ".jinja"), encoding="utf-8") as f:
        source = f.read()
    for name, messages in conversations.items():
        if name == "tools" and template.startswith("smollm2"):
            continue
        for generation in (True, False):
            add(f"real-{template}-{name}-{'gen' if generation else 'nogen'}", source, messages, generation,
                template_file=template + ".jinja")

rng = random.Random(5)
opens = ["{% if add_generation_prompt %}", "{%- if add_generation_prompt %}", "{% if add_generation_prompt -%}",
         "{%- if add_generation_prompt -%}", "{%+ if add_generation_prompt %}", "{% if add_generation_prompt +%}"]
closes = ["{% endif %}", "{%- endif %}", "{% endif -%}", "{%- endif -%}"]
outputs = ["{{ 'a' }}", "{{- 'b' }}", "{{ 'c' -}}", "{{- 'd' -}}"]
comments = ["{# c #}", "{#- c #}", "{# c -#}"]
spaces = ["", " ", "  ", "\n", " \n", "\n  ", "\t\n\t", "\r\n", "x", "y\n", "\n\n"]
for i in range(150):
    parts, depth = [], 0
    for _ in range(rng.randint(1, 8)):
        parts.append(rng.choice(spaces))
        r = rng.random()
        if r < 0.3:
            parts.append(rng.choice(opens))
            depth += 1
        elif r < 0.5 and depth > 0:
            parts.append(rng.choice(closes))
            depth -= 1
        elif r < 0.8:
            parts.append(rng.choice(outputs))
        else:
            parts.append(rng.choice(comments))
    parts.append(rng.choice(spaces))
    parts += [rng.choice(closes) + rng.choice(spaces) for _ in range(depth)]
    for generation in (True, False):
        add(f"whitespace-{i}-{'gen' if generation else 'nogen'}", "".join(parts), [], generation)

MESSAGES = [{"role": "system", "content": "  Be brief.\n"}, {"role": "user", "content": "What is 2+3? Answer: \\boxed{5}"}]
expressions = [
    "{{ messages[0].content | trim }}|{{ messages[0].content.strip() }}|{{ messages[0].content.lstrip() }}|{{ messages[0]['content'].rstrip() }}|",
    "{{ 'x' if false }}|{{ undefined_thing }}|{{ messages[9] }}|{{ none is none }}|{{ 3 is even }}|{{ 3 is odd }}",
    "{{ 'a' not in 'bcd' }} {{ 'b' in ['a','b'] }} {{ 'role' in messages[0] }} {{ 2 > 1 and 1 >= 1 }} {{ 'a' < 'b' }}",
    "{{ messages|length }}{{ messages[-1].role }}{{ messages[1:]|length }}{{ messages[0].role[1:3] }}{{ 'abc'[::-1] }}",
    "{{ 'a,b,,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'a,b,c'.split(',', 1) }}",
    "{{ 'Hello World'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'abc'.replace('b','x') }}",
    "{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x','c')) }} {{ [1,2] + [3] }} {{ 'ab' * 2 }} {{ 10 - 2 * 3 }} {{ -3 // 2 }} {{ -7 % 3 }}",
    "{{ {'k': 'v'}.get('k') }} {{ {'k': 'v'}.get('z', 'd') }} {{ {'k': 'v'}.get('z') }} {{ {'a':1,'b':2}.keys()|list }} {{ {'a':1}.values()|list }}",
    "{{ [1,2,3]|join('-') }} {{ [3,1]|first }} {{ [3,1]|last }} {{ 'abc'|upper }} {{ 'ABC'|lower }} {{ 5|string }} {{ '7'|int + 1 }} {{ '2.5'|float }}",
    "{{ x|default('dflt') }} {{ ''|default('e', true) }} {{ [1,2]|reverse|list }} {{ range(3)|list }} {{ range(1,7,2)|list }}",
    "{{ {'a': {'b': [1, 'x\\n']}}|tojson }}|{{ [1,{'c':true}]|tojson(indent=2) }}|{{ 'é\"'|tojson }}",
    "{% for m in messages %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{% endfor %}",
    "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% if loop.previtem is defined %}p{% endif %}{% if loop.nextitem is defined %}n{% endif %};{% endfor %}",
    "{% set s = 'x' %}{% if true %}{% set s = 'y' %}{% endif %}{{ s }}{% for i in [1] %}{% set s = 'z' %}{{ s }}{% endfor %}{{ s }}",
    "{% for c in 'ab' %}{{ c }}.{% endfor %}{% for k in {'p': 1, 'q': 2} %}{{ k }}{% endfor %}",
    "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == 'a' }} {{ [1] == [1] }} {{ none == false }} {{ 1 != 2 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2.0 }} {{ 1e3 if false else 0.5 }}",
    "{{ messages[0] is mapping }} {{ messages is sequence }} {{ 'x' is string }} {{ 1 is number }} {{ 1.5 is float }} {{ 1 is integer }} {{ true is boolean }} {{ messages is iterable }}",
    "{{ (1, 2)|length }} {{ [] is defined }} {{ messages[1].content[-9:] }} {{ 'abc'|length }} {{ 'a' ~ 1 ~ none }}",
    "{{ messages[1]['content'].split('\\\\boxed{')[-1].rstrip('}') }}",
    "  {%- for m in messages %}\n    [{{ m.role }}]\n  {% endfor -%}\n  end",
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + eos_token }}{% endfor %}",
    # namespace(): attributes set inside loops stay set after them; its repr; item access; truthiness.
    "{% set ns = namespace(last=-1, seen=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% set ns.seen = true %}{% endif %}{% endfor %}{{ ns.last }} {{ ns.seen }} {{ ns.missing is defined }}",
    "{% set ns = namespace({'a': 1}, b='two') %}{{ ns }}{% set ns.a = ns.a + 2 %}|{{ ns.a }}|{{ ns['b'] }}|{{ ns is defined }}{% if ns %}|t{% endif %}",
    "{% set ns = namespace(open=true, at=messages|length - 1) %}{% for m in messages[::-1] %}{% set i = (messages|length - 1) - loop.index0 %}{% if ns.open and m.role == 'system' and not (m.content.startswith('<x>') and m.content.endswith('</x>')) %}{% set ns.open = false %}{% set ns.at = i %}{% endif %}{% endfor %}{{ ns.at }}{{ ns.open }}",
    "{% set outer = namespace(n=0) %}{% for a in [1, 2] %}{% for b in [3, 4] %}{% set outer.n = outer.n + a * b %}{% endfor %}{% endfor %}{{ outer.n }}{% set ns = namespace() %}{{ ns }}",
]
expressions += [
    # select/reject with tests and their operator spellings, selectattr/rejectattr, map, items.
    "{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|join(',') }} {{ ['a','code_interpreter','b']|reject('equalto', 'code_interpreter')|join(', ') }} {{ [0,1,'',none,'x']|select|list }} {{ [1,5,9]|select('>', 3)|list }} {{ [1,5,9]|reject('==', 5)|list }} {{ [3,6,7]|select('divisibleby', 3)|list }} {{ ['a','B']|select('lower')|list }} {{ x|select|list }}",
    "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }} {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }} {{ messages|map(attribute='missing', default='d')|list }} {{ messages|map(attribute='role')|map('upper')|join(',') }} {{ [{'a': {'b': 1}}, {'a': {'b': 2}}]|map(attribute='a.b')|list }} {{ messages|selectattr('missing')|list }} {{ messages|selectattr('missing', 'undefined')|list|length }} {{ [[1,2],[3,4]]|map(attribute='1')|list }} {{ messages|selectattr('role')|list|length }}",
    "{% for k, v in {'x': 1, 'y': [2]}|items %}{{ k }}={{ v }};{% endfor %}{{ undefined_thing|items|list }}{{ {'a': 1}|items|list|length }}",
    # Tests that take an argument, in parentheses or right after the name.
    "{{ 3 is divisibleby 3 }} {{ 4 is divisibleby(3) }} {{ 'a' is in 'abc' }} {{ 2 is in [1, 3] }} {{ 1 is eq 1.0 }} {{ 'x' is equalto 'y' }} {{ 2 is gt 1 }} {{ 2 is ge(3) }} {{ 1 is lt 2 and 1 is le 1 }} {{ 5 is ne 5 }} {{ 5 is not ne 5 }}",
    "{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aB' is lower }} {{ '12' is lower }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }} {{ range is callable }} {{ 'x' is callable }} {{ x is not defined and 1 is eq 1 }} {{ 'ab' is in messages[1].content or 1 is eq 2 }}",
    # Loop controls (transformers enables them).
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for m in messages %}{{ m.role }}{% if loop.first %}{% break %}{% endif %}{% endfor %}|{% for i in [1,2] %}{% for j in [1,2,3] %}{% if j == 2 %}{% break %}{% endif %}{{ i }}{{ j }}{% endfor %}{% endfor %}|{% for i in [1, 2] if i > 5 %}{% break %}{% else %}none{% endfor %}",
    # A for loop's else runs when no iteration reached the end of its body.
    "{% for m in messages %}{% continue %}{% else %}none{% endfor %}|{% for i in [1,2] %}{% break %}{% else %}E{% endfor %}|{% for i in [1,2] %}{% if i == 2 %}{% break %}{% endif %}{% else %}F{% endfor %}|{% for i in [] %}x{% else %}G{% endfor %}",
    # The select and map filters give generators: true even when empty; nothing from a false value.
    "{% if messages|selectattr('role', 'eq', 'tool') %}T{% endif %}|{{ tools|map(attribute='name')|list }}|{{ none|select|list }}|{{ [{}]|map(attribute='a', default=none)|select('defined')|list|length }}|{{ [[1,2]]|map(attribute='-1')|select('defined')|list|length }}|{{ [[1,2]]|map(attribute='1')|list }}|{{ 'a' in nothing }}|{{ 'a' is in nothing }}|{{ 2 in [1,2]|select }}|{{ messages|map(attribute='role')|first }}|{{ [3,1,2]|select|reverse|list }}",
    # The functions transformers defines, as values.
    "{{ raise_exception is defined }} {{ range is defined }} {{ namespace is defined }} {{ strftime_now is defined }} {{ strftime_now is undefined }}",
]
for i, source in enumerate(expressions):
    add(f"expression-{i}", source, MESSAGES, True, {"bos_token": "<s>", "eos_token": "</s>"})

# strftime_now: the conversions chat templates use and the rest of glibc's, at dates whose ISO week, week
# numbers, 12-hour clock and leap day are edge cases; and Llama 3.x's date block with and without a date.
DATES = [datetime.datetime(2024, 7, 26, 9, 5, 3), datetime.datetime(2027, 1, 1, 0, 0, 0),
         datetime.datetime(2024, 12, 31, 12, 30, 59), datetime.datetime(2024, 2, 29, 23, 59, 0),
         datetime.datetime(2021, 1, 3, 13, 1, 1), datetime.datetime(1999, 12, 27, 7, 7, 7)]
STRFTIME = ("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%A %B %a %h %j') }}|"
            "{{ strftime_now('%U %W %V %G %g %u %w') }}|{{ strftime_now('%-d/%-m %I%p %l%P %k %e %_d %y %C %%') }}|"
            "{{ strftime_now('%c|%x|%X|%F|%T|%D|%R|%r') }}|{{ strftime_now('[%z%Z]%n%t') }}|{{ strftime_now is defined }}")
LLAMA_DATE = ("{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
              "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n"
              "        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n"
              "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}")
for i, date in enumerate(DATES):
    add(f"date-strftime-{i}", STRFTIME, MESSAGES, True, date=date)
add("date-llama-block-dated", LLAMA_DATE, MESSAGES, True, {"bos_token": "<s>"}, date=DATES[1])
add("date-llama-block-undated", LLAMA_DATE, MESSAGES, True, {"bos_token": "<s>"})

with open(os.path.join(DIR, "jinja2-goldens.json"), "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(f"{len(cases)} cases")

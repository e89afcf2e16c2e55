/*
 * test_jinja.c - the Jinja engine against python3-jinja2.
 *
 * 1. Expressions, statements, filters, tests, methods and whitespace control: each template below
 *    was rendered by python3-jinja2 3.1.2 configured as Hugging Face transformers renders chat
 *    templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson as
 *    json.dumps(ensure_ascii=False)) over CTX_JSON, and its output pasted here as the expected text.
 * 2. Templates python3-jinja2 refuses (syntax errors, type errors, raise_exception, undefined
 *    misuse): seek must fail too, with a "line:column: message" error.
 * 3. Limits: output size, steps, recursion and nesting turn into errors, not crashes or hangs.
 * 4. chat_render (context, thinking removal) and chat_prompt_opens_think.
 * 5. A fuzz loop: the real templates, randomly mutated, must parse-or-fail and render-or-fail
 *    without crashing (run under `make asan` to also catch leaks and overflows).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "base/base.h"
#include "chat/chat.h"
#include "check.h"
#include "testutil.h"

/* ---- generated from python3-jinja2 3.1.2 ---- */
static const char *CTX_JSON = "{\"d\": {\"a\": 1, \"b\": [1, 2], \"c\": {\"x\": \"y\"}}, \"s\": \"hi\", \"l\": [3, 1, 2], \"n\": null, \"msgs\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\"}], \"f\": 1.5, \"u\": \"h\303\251llo w\303\266rld\", \"t\": true, \"e\": [], \"i\": 7, \"ws\": \"  a b  \", \"people\": [{\"name\": \"Bob\", \"age\": 30}, {\"name\": \"alice\", \"age\": 25}, {\"name\": \"Carl\", \"age\": 35}]}";
static const struct { const char *src, *want; } cases[] = {
    { "{{ 1 }}|{{ -3 }}|{{ 1.0 }}|{{ 2.50 }}|{{ 1e3 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.1 + 0.2 }}",
      "1|-3|1.0|2.5|1000.0|1e-05|1e+16|1000000000000000.0|0.30000000000000004" },
    { "{{ 123456789012345678 }}|{{ 1_000 }}|{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 1.5e-10 }}|{{ -0.0 }}",
      "123456789012345678|1000|31|15|5|1.5e-10|-0.0" },
    { "{{ true }}|{{ False }}|{{ none }}|{{ None }}|{{ n }}|{{ undefined_thing }}|",
      "True|False|None|None|None||" },
    { "{{ 'a\\nb' }}|{{ \"q'\" }}|{{ 'tab\\tx' }}|{{ '\\x41\\u00e9\\U0001F600' }}|{{ 'a' 'b' \"c\" }}|{{ '\\q' }}",
      "a\nb|q'|tab\tx|A\303\251\360\237\230\200|abc|\\q" },
    { "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}",
      "[1, 'a', None, True, 1.5, [2], {'k': 'v'}]" },
    { "{{ (1,) }}|{{ (1, 2) }}|{{ () }}|{{ {'a': 1, 2: 'b'} }}|{{ {} }}|{{ [] }}",
      "(1,)|(1, 2)|()|{'a': 1, 2: 'b'}|{}|[]" },
    { "{{ [\"it's\", 'say \"x\"', 'both \\' \"', 'nl\\n', '\303\251'] }}",
      "[\"it's\", 'say \"x\"', 'both \\' \"', 'nl\\n', '\303\251']" },
    { "{{ d }}|{{ l }}|{{ msgs[0] }}|{{ f }}|{{ t }}",
      "{'a': 1, 'b': [1, 2], 'c': {'x': 'y'}}|[3, 1, 2]|{'role': 'user', 'content': 'x'}|1.5|True" },
    { "{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}",
      "3.5|2.0|3|-4|1|2|-2|1024|0.5" },
    { "{{ 7.5 // 2 }}|{{ -7.5 % 2 }}|{{ 1 + 1.5 }}|{{ 3 * 1.0 }}|{{ true + 1 }}|{{ 'ab' * 3 }}|{{ 2 * 'x' }}|{{ [1] * 2 }}",
      "3.0|0.5|2.5|3.0|2|ababab|xx|[1, 1]" },
    { "{{ 'a' + 'b' }}|{{ [1] + [2, 3] }}|{{ 1 ~ 2 ~ 'x' ~ none ~ undefined_v }}|{{ -f }}|{{ +i }}|{{ 10 - 2 - 3 }}",
      "ab|[1, 2, 3]|12xNone|-1.5|7|5" },
    { "{{ 2 + 3 * 4 }}|{{ (2 + 3) * 4 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 10 / 4 * 2 }}|{{ 1 ~ (2 + 3) }}",
      "14|20|64|4|5.0|15" },
    { "{{ 1 == 1.0 }}|{{ 1 != 2 }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] }}|{{ 2 >= 2 }}|{{ 1 <= 0 }}",
      "True|True|True|False|True|True|True|False" },
    { "{{ 'a' in 'cat' }}|{{ 'z' not in 'cat' }}|{{ 2 in l }}|{{ 'a' in d }}|{{ 'zz' in d }}|{{ 1 in undefined_v }}|{{ true == 1 }}",
      "True|True|True|True|False|False|True" },
    { "{{ 0 or 'x' }}|{{ 'a' and 'b' }}|{{ '' and 'b' }}|{{ none or none }}|{{ not 0 }}|{{ not not 'a' }}|{{ 1 and 0 or 5 }}",
      "x|b||None|True|True|5" },
    { "{{ 'y' if t else 'n' }}|{{ 'y' if n else 'n' }}|{{ 'y' if n }}|{{ 1 if false else 2 if false else 3 }}",
      "y|n||3" },
    { "{{ d == {'b': [1, 2], 'a': 1, 'c': {'x': 'y'}} }}|{{ [1, 2] == (1, 2) }}|{{ none == none }}|{{ undefined_a == undefined_b }}",
      "True|False|True|True" },
    { "{{ l[0] }}|{{ l[-1] }}|{{ l[5] }}|{{ d['a'] }}|{{ d.a }}|{{ d.c.x }}|{{ d['zz'] }}|{{ msgs[1].role }}|{{ l.0 }}",
      "3|2||1|1|y||assistant|3" },
    { "{{ s[0] }}|{{ u[1] }}|{{ u[-1] }}|{{ u[1:4] }}|{{ u[::-1] }}|{{ u[::2] }}|{{ s[10:] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[::-1] }}",
      "h|\303\251|d|\303\251ll|dlr\303\266w oll\303\251h|hlowrd||[1, 2]|[3, 1]|[2, 1, 3]" },
    { "{{ l[-100:100] }}|{{ l[2:0:-1] }}|{{ 'abcdef'[1:5:2] }}|{{ l[none:2] }}|{{ 'abc'[true:] }}",
      "[3, 1, 2]|[2, 1]|bd|[3, 1]|bc" },
    { "{{ s.nothing }}|{{ d.nothing is defined }}|{{ n.x is defined }}|{{ s._private is defined }}",
      "|False|False|False" },
    { "{{ x is defined }}|{{ s is defined }}|{{ x is undefined }}|{{ n is none }}|{{ s is string }}|{{ 1 is number }}|{{ t is number }}",
      "False|True|True|True|True|True|True" },
    { "{{ t is boolean }}|{{ 1 is integer }}|{{ t is integer }}|{{ f is float }}|{{ d is mapping }}|{{ l is mapping }}",
      "True|True|False|True|True|False" },
    { "{{ s is iterable }}|{{ l is iterable }}|{{ 1 is iterable }}|{{ undefined_v is iterable }}|{{ s is sequence }}|{{ d is sequence }}|{{ n is iterable }}",
      "True|True|False|True|True|True|False" },
    { "{{ 3 is odd }}|{{ 4 is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}|{{ 'a' is equalto 'a' }}|{{ 2 is eq 3 }}|{{ 3 is gt 2 }}",
      "True|True|True|False|True|False|True" },
    { "{{ 2 is in l }}|{{ 'x' is lower }}|{{ 'X' is upper }}|{{ t is true }}|{{ t is false }}|{{ 1 is true }}|{{ n is not none }}",
      "True|True|True|True|False|False|False" },
    { "{{ not s is defined }}|{{ s is not defined }}|{{ l|select is sequence }}|{{ 'trim' is filter }}|{{ 'odd' is test }}|{{ s is sameas s }}",
      "False|False|False|True|True|True" },
    { "{{ x.__class__ }}|{{ s.__class__ }}|{{ d._x }}",
      "||" },
    { "{{ d.items is callable }}|{{ range is callable }}|{{ 1 is callable }}",
      "True|True|False" },
    { "{% if false %}a{% elif n %}b{% elif 1 %}c{% else %}d{% endif %}",
      "c" },
    { "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }},{% endfor %}",
      "10TrueFalse332,21FalseFalse321,32FalseTrue310," },
    { "{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }}:{{ loop.cycle('a', 'b') }} {% endfor %}",
      "-1:a 3-2:b 1-:a " },
    { "{% for x in e %}no{% else %}empty{% endfor %}|{% for x in l if x > 1 %}{{ x }}{{ loop.index }}{% else %}none{% endfor %}",
      "empty|3122" },
    { "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for c in 'h\303\251y' %}[{{ c }}]{% endfor %}",
      "a=1;b=[1, 2];c={'x': 'y'};|abc|[h][\303\251][y]" },
    { "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}|{% for x in undefined_v %}x{% endfor %}",
      "37|" },
    { "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
      "13" },
    { "{% for x in [1, 2] %}{% for y in 'ab' %}{{ x }}{{ y }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}",
      "1a11b21 2a12b22 " },
    { "{% set x = 1 %}{% for i in l %}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
      "3121" },
    { "{% for i in [1, 2] %}{% if i == 1 %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}{{ y }}",
      "[5][]" },
    { "{% set ns = namespace(n=0, s='') %}{% for i in l %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }} {{ ns.missing is defined }}",
      "6 312 False" },
    { "{% set ns = namespace() %}{% set ns.a = [1] %}{{ ns.a }}|{{ ns['a'] }}|{{ ns }}",
      "[1]|[1]|<Namespace {'a': [1]}>" },
    { "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t2 = 1, 2 %}{{ t2 }}|{% set q = [3, 4] %}{% set x, y = q %}{{ y }}{{ x }}",
      "12|(1, 2)|43" },
    { "{% set body %}  Hi {{ s }} {% endset %}[{{ body }}]|{% set up | upper | trim %} shout {% endset %}[{{ up }}]",
      "[  Hi hi ]|[SHOUT]" },
    { "{% macro m(a, b=2, c='x') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 3) }}|{{ m(1, c='z') }}|{{ m() }}|{{ m(b=5, a=4) }}",
      "1-2-x|1-3-x|1-2-z|-2-x|4-5-x" },
    { "{% macro m(x) %}<{{ x }}|{{ caller() }}>{% endmacro %}{% call m(1) %}body {{ s }}{% endcall %}",
      "<1|body hi>" },
    { "{% macro m() %}{% for i in [1, 2] %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(v) m() %}[{{ v }}]{% endcall %}",
      "[1][2]" },
    { "{% macro show() %}{{ g }}{% endmacro %}{% set g = 'late' %}{{ show() }}|{% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}",
      "late|3210" },
    { "{% filter upper %}abc {{ s }}{% endfilter %}|{% with a = 5, b = s %}{{ a }}{{ b }}{% endwith %}{{ a }}",
      "ABC HI|5hi" },
    { "{% raw %}{{ not rendered }}{% if %}{% endraw %}|{% print s, 1 %}",
      "{{ not rendered }}{% if %}|hi1" },
    { "{% set messages = msgs[1:] %}{{ messages|length }}{% if true %}{% set z = 1 %}{% endif %}{{ z }}",
      "11" },
    { "{{ ws|trim }}|{{ 'xxhixx'|trim('x') }}|{{ s|upper }}|{{ '\303\211COLE Stra\303\237e'|lower }}|{{ u|upper }}|{{ 'hello world-foo bar_baz'|title }}|{{ 'hELLO wORLD'|capitalize }}",
      "a b|hi|HI|\303\251cole stra\303\237e|H\303\211LLO W\303\226RLD|Hello World-Foo Bar_baz|Hello world" },
    { "{{ l|length }}|{{ u|length }}|{{ d|length }}|{{ undefined_v|length }}|{{ l|count }}|{{ s|list }}|{{ d|list }}",
      "3|11|3|0|3|['h', 'i']|['a', 'b', 'c']" },
    { "{{ l|join(', ') }}|{{ l|join }}|{{ people|join(',', attribute='name') }}|{{ [1, none, 'a']|join('-') }}",
      "3, 1, 2|312|Bob,alice,Carl|1-None-a" },
    { "{{ l|first }}|{{ l|last }}|{{ s|first }}|{{ e|first }}|{{ d|first }}|{{ d|last }}",
      "3|2|h||a|c" },
    { "{{ undefined_v|default('dflt') }}|{{ n|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ s|d('x') }}|{{ 0|default(5, boolean=true) }}",
      "dflt|None|dflt|hi|5" },
    { "{{ '42'|int }}|{{ '3.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(9) }}|{{ 3.9|int }}|{{ ' 12 '|int }}|{{ 'ff'|int(base=16) }}|{{ none|int }}|{{ '1_000'|int }}",
      "42|3|0|9|3|12|255|0|1000" },
    { "{{ '2.5'|float }}|{{ 3|float }}|{{ 'x'|float }}|{{ '1e3'|float }}|{{ 2.675|round(2) }}|{{ 2.5|round }}|{{ 3|round }}|{{ 1.234|round(1, 'floor') }}|{{ 1.21|round(1, 'ceil') }}",
      "2.5|3.0|0.0|1000.0|2.67|2.0|3|1.2|1.3" },
    { "{{ -3|abs }}|{{ -2.5|abs }}|{{ [3, 1, 2]|sum }}|{{ people|sum(attribute='age') }}|{{ [1.5, 2]|sum(start=1) }}|{{ l|max }}|{{ l|min }}|{{ ['b', 'A', 'c']|max }}",
      "3|2.5|6|90|4.5|3|1|c" },
    { "{{ l|sort }}|{{ l|sort(reverse=true) }}|{{ ['b', 'A', 'a', 'C']|sort }}|{{ ['b', 'A', 'a']|sort(case_sensitive=true) }}|{{ people|sort(attribute='age')|map(attribute='name')|join(',') }}",
      "[1, 2, 3]|[3, 2, 1]|['A', 'a', 'b', 'C']|['A', 'a', 'b']|alice,Bob,Carl" },
    { "{{ ['a', 'A', 'b', 'a']|unique|list }}|{{ l|reverse|list }}|{{ u|reverse }}|{{ d|dictsort }}|{{ {'b': 1, 'A': 2}|dictsort(by='key') }}|{{ {'x': 2, 'y': 1}|dictsort(by='value') }}",
      "['a', 'b']|[2, 1, 3]|dlr\303\266w oll\303\251h|[('a', 1), ('b', [1, 2]), ('c', {'x': 'y'})]|[('A', 2), ('b', 1)]|[('y', 1), ('x', 2)]" },
    { "{{ people|map(attribute='name')|list }}|{{ l|map('string')|list }}|{{ ['a', 'b']|map('upper')|join }}|{{ people|map(attribute='zz', default='?')|list }}|{{ msgs|map(attribute='role')|list }}",
      "['Bob', 'alice', 'Carl']|['3', '1', '2']|AB|['?', '?', '?']|['user', 'assistant']" },
    { "{{ l|select('odd')|list }}|{{ l|reject('odd')|list }}|{{ [0, 1, '', 'a', none]|select|list }}|{{ people|selectattr('age', 'gt', 26)|map(attribute='name')|list }}|{{ msgs|rejectattr('role', 'equalto', 'user')|list }}",
      "[3, 1]|[2]|[1, 'a']|['Bob', 'Carl']|[{'role': 'assistant', 'content': 'y'}]" },
    { "{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ ['code_interpreter', 'x']|reject('equalto', 'code_interpreter')|join(', ') }}|{{ people|selectattr('name')|list|length }}",
      "1|x|3" },
    { "{{ d|items|list }}|{{ undefined_v|items|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items() }}|{{ d.keys() }}",
      "[('a', 1), ('b', [1, 2]), ('c', {'x': 'y'})]|[]|['a', 'b', 'c']|[1, [1, 2], {'x': 'y'}]|dict_items([('a', 1), ('b', [1, 2]), ('c', {'x': 'y'})])|dict_keys(['a', 'b', 'c'])" },
    { "{{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'ab'|replace('', '.') }}|{{ 1|string ~ 'x' }}|{{ [1, 'a']|string }}|{{ n|string }}",
      "a+b+c|bba|.a.b.|1x|[1, 'a']|None" },
    { "{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|escape }}|{{ '<i>'|safe }}|{{ 'one two  three'|wordcount }}|{{ 'ab'|center(6) }}|[{{ 'abc'|center(6) }}]",
      "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;|&lt;b&gt;|<i>|3|  ab  |[ abc  ]" },
    { "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}",
      "a\n    b\n\n    c|  a\n  b|a\n> \n> b" },
    { "{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ [1, 2, 3]|batch(2, 0)|list }}|{{ '%s is %d years, %.2f'|format('Bob', 30, 1.5) }}|{{ '%05.1f%%' % 3.14159 }}|{{ '%s-%s' % (1, 'a') }}",
      "[[1, 2], [3, 4], [5]]|[[1, 2], [3, 0]]|Bob is 30 years, 1.50|003.1%|1-a" },
    { "{{ d|tojson }}|{{ l|tojson }}|{{ s|tojson }}|{{ n|tojson }}|{{ t|tojson }}|{{ f|tojson }}|{{ 1e-7|tojson }}|{{ '\303\251\"\\n\\t\\u0001/'|tojson }}",
      "{\"a\": 1, \"b\": [1, 2], \"c\": {\"x\": \"y\"}}|[3, 1, 2]|\"hi\"|null|true|1.5|1e-07|\"\303\251\\\"\\n\\t\\u0001/\"" },
    { "{{ d|tojson(indent=2) }}|{{ e|tojson(indent=2) }}|{{ {}|tojson(indent=4) }}|{{ [[], {}, [1]]|tojson(indent=1) }}",
      "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": {\n    \"x\": \"y\"\n  }\n}|[]|{}|[\n [],\n {},\n [\n  1\n ]\n]" },
    { "{{ {'b': 1, 'a': [1, 2]}|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ '\303\251'|tojson(true) }}|{{ '\360\237\230\200'|tojson(ensure_ascii=true) }}|{{ (1, 2)|tojson }}",
      "{\"a\": [1, 2], \"b\": 1}|{\"a\":1,\"b\":[1,2],\"c\":{\"x\":\"y\"}}|\"\\u00e9\"|\"\\ud83d\\ude00\"|[1, 2]" },
    { "{{ {1: 'a', true: 'b', none: 'c', 1.5: 'd'}|tojson }}|{{ d|tojson(indent='\\t') }}",
      "{\"1\": \"b\", \"null\": \"c\", \"1.5\": \"d\"}|{\n\t\"a\": 1,\n\t\"b\": [\n\t\t1,\n\t\t2\n\t],\n\t\"c\": {\n\t\t\"x\": \"y\"\n\t}\n}" },
    { "{{ people|tojson(indent=4) }}",
      "[\n    {\n        \"name\": \"Bob\",\n        \"age\": 30\n    },\n    {\n        \"name\": \"alice\",\n        \"age\": 25\n    },\n    {\n        \"name\": \"Carl\",\n        \"age\": 35\n    }\n]" },
    { "{{ 'a,b,,c'.split(',') }}|{{ '  a  b c '.split() }}|{{ 'a b c'.split(none, 1) }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' a b c '.rsplit(none, 1) }}|{{ ''.split() }}|{{ ''.split(',') }}",
      "['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b c']|['a', 'b,c']|['a,b', 'c']|[' a b', 'c']|[]|['']" },
    { "[{{ ws.strip() }}][{{ ws.lstrip() }}][{{ ws.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ 'abc'.lstrip('ba') }}]",
      "[a b][a b  ][  a b][a][c]" },
    { "{{ s.startswith('h') }}|{{ s.endswith('x') }}|{{ s.startswith(('x', 'h')) }}|{{ s.upper() }}|{{ 'AbC'.lower() }}|{{ 'hello wORLD foo_bar'.title() }}|{{ 'hELLO'.capitalize() }}",
      "True|False|True|HI|abc|Hello World Foo_Bar|Hello" },
    { "{{ 'aXbXc'.replace('X', '-') }}|{{ 'aXbXc'.replace('X', '-', 1) }}|{{ u.find('w') }}|{{ s.find('z') }}|{{ 'abcabc'.rfind('b') }}|{{ 'aaaa'.count('aa') }}|{{ '-'.join(['a', 'b']) }}",
      "a-b-c|a-bXc|6|-1|4|2|a-b" },
    { "{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '123'.isdigit() }}|{{ 'ab1'.isalpha() }}|{{ ' '.isspace() }}|{{ 'abc'.islower() }}|{{ 'prefix-x'.removeprefix('prefix-') }}",
      "['a', 'b', 'c']|True|False|True|True|x" },
    { "{{ d.get('a') }}|{{ d.get('zz') }}|{{ d.get('zz', 'dflt') }}|{{ l.index(1) }}|{{ l.count(3) }}|{{ msgs[0].get('role') }}",
      "1|None|dflt|1|1|user" },
    { "{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}|{{ namespace(d).b }}",
      "[0, 1, 2]|[1, 4, 7]|[5, 3, 1]|{'a': 1, 'b': 'x'}|1|[1, 2]" },
    { "{% for i in range(3) %}{{ i }}{% endfor %}|{{ range(0)|list }}",
      "012|[]" },
    { "a  {%- if true %}  b  {% endif -%}  c",
      "a  b  c" },
    { "a\n  {% if true %}\n  b\n  {% endif %}\nc",
      "a\n  b\nc" },
    { "a\n  {%+ if true %}\n  b\n  {%- endif +%}\nc",
      "a\n    b\nc" },
    { "{{- '  x  ' -}}  |  {{ 'y' }}  \n  {# comment #}\n  z\n{#- c2 -#}\n   w",
      "  x  |  y  \n  zw" },
    { "  {{ 'v' }}\n  {% set q = 1 %}  trailing\n{% if true %}yes{% endif %}\n\nend\n",
      "  v\n  trailing\nyes\nend" },
    { "line1\r\nline2\r\n{% if true %}\r\nx\r\n{% endif %}\r\n",
      "line1\nline2\nx\n" },
    { "\t{% for i in l %}\n\t- {{ i }}\n\t{% endfor %}\n",
      "\t- 3\n\t- 1\n\t- 2\n" },
    { "{% raw -%}   raw  {%- endraw %}|{%- raw %} keep {% endraw -%}  |",
      "raw| keep |" },
    { "x {#- strip left -#} y {#+ keep +#} z",
      "xy  z" },
    { "a{{ '' }}\n{% if true %}b{% endif %}\n{{ 'c' }}\n",
      "a\nbc" },
    { "{% if d.zz %}yes{% else %}no{% endif %}|{% if e %}y{% else %}n{% endif %}|{% if l|select %}gen-true{% endif %}",
      "no|n|gen-true" },
    { "{{ msgs|length }}{% for m in msgs %}{% if m.role == 'user' and not loop.last %}U{% elif m['role'] == 'assistant' %}A{% endif %}{% endfor %}",
      "2UA" },
    { "{% set content = 'a</think>b</think>c' %}{{ content.split('</think>')[-1] }}|{{ content.split('</think>')[0] }}",
      "c|a" },
    { "{{ 'x' ~ 1.0 ~ 2 ~ [1] ~ {'a': none} }}|{{ u ~ '!' }}",
      "x1.02[1]{'a': None}|h\303\251llo w\303\266rld!" },
    { "{{ (1, 2)[0] }}|{{ [[1, 2], [3]][0][1] }}|{{ {'a': {'b': 'deep'}}['a']['b'] }}|{{ {'a': {'b': 'deep'}}.a.b }}",
      "1|2|deep|deep" },
    { "{% set x = {'role': 'user', 'content': 'x'} %}{{ x == msgs[0] }}|{{ x in msgs }}|{{ msgs.index(x) }}",
      "True|True|0" },
    { "{% if false %}{{ x|nosuch }}{{ x is nosuchtest }}{% endif %}{{ 'y' if true else x|nosuch2 }}|{{ (1|map('upper')) and 'lazy ok' }}",
      "y|lazy ok" },
    { "{% macro m(a, b, c=3) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(*[1, 2]) }}|{{ m(1, **{'b': 5, 'c': 6}) }}|{{ '%(a)s-%(b)d' % {'a': 'x', 'b': 2} }}|{{ '%s|' % undefined_v }}",
      "123|156|x-2||" },
    { "text {#",
      "text " },
    { "{{ '[%5s|%-5s|%.2s|%5.1s]' % ('\303\251', 'ab', 'h\303\251llo', 'xyz') }}{{ ('%s' % ('x' * 300))|length }}{{ '%.300f'|format(1.5)|length }}",
      "[    \303\251|ab   |h\303\251|    x]300302" },
    { "{{ '%5s|%-4d|%x|%o|%e|%g|%r' % ('ab', 7, 255, 8, 12345.678, 0.0001, 'q') }}",
      "   ab|7   |ff|10|1.234568e+04|0.0001|'q'" },
    { "{{ 1.0 == 1 }}|{{ 10 // 3.0 }}|{{ 2 ** 0.5 }}|{{ 1 / 3 }}|{{ 2 / 3 }}|{{ 100000000000000000000.0 }}|{{ 0.0001 }}|{{ 123.456e5 }}",
      "True|3.0|1.4142135623730951|0.3333333333333333|0.6666666666666666|1e+20|0.0001|12345600.0" },
};
static const char *const error_cases[] = {
    "{% for x in [] %}{{ x is nosuchtest }}{% endfor %}", /* TemplateAssertionError: No test named 'nosuchtest'. */
    "{{ (1|map('upper'))|list }}", /* TypeError: 'int' object is not iterable */
    "{{ '%(a)s' % {} }}", /* KeyError: 'a' */
    "{{ 'a' + 1 }}", /* TypeError: can only concatenate str (not "int") to str */
    "{{ undefined_v.attr }}", /* UndefinedError: 'undefined_v' is undefined */
    "{{ undefined_v + 1 }}", /* UndefinedError: 'undefined_v' is undefined */
    "{{ 1 / 0 }}", /* ZeroDivisionError: division by zero */
    "{{ 1 // 0 }}", /* ZeroDivisionError: integer division or modulo by zero */
    "{{ raise_exception('custom failure') }}", /* TemplateError: custom failure */
    "{% if %}{% endif %}", /* TemplateSyntaxError: Expected an expression, got 'end of statement block' */
    "{% for %}", /* TemplateSyntaxError: Expected an expression, got 'end of statement block' */
    "{% endfor %}", /* TemplateSyntaxError: Encountered unknown tag 'endfor'. */
    "{{ x | nosuchfilter }}", /* TemplateAssertionError: No filter named 'nosuchfilter'. */
    "{{ x is nosuchtest }}", /* TemplateAssertionError: No test named 'nosuchtest'. */
    "{{ (1 }}", /* TemplateSyntaxError: unexpected '}', expected ')' */
    "{{ [1, 2 }}", /* TemplateSyntaxError: unexpected '}', expected ']' */
    "{{ 'unterminated }}", /* TemplateSyntaxError: unexpected char "'" at 3 */
    "{% if true %}", /* TemplateSyntaxError: Unexpected end of template. Jinja was looking for the follo */
    "{% break %}", /* SyntaxError: 'break' outside loop (<template>, line 11) */
    "{{ l|tojson(indent=2) ~ (l|map('string')|tojson) }}", /* TypeError: Object of type generator is not JSON serializable */
    "{{ n.attr.x }}", /* UndefinedError: 'None' has no attribute 'attr' */
    "{{ 1 < 'a' }}", /* TypeError: '<' not supported between instances of 'int' and 'str' */
    "{% set x = 1 %}{% set x.y = 2 %}", /* TemplateRuntimeError: cannot assign attribute on non-namespace object */
    "{{ l[::0] }}", /* ValueError: slice step cannot be zero */
    "{{ s() }}", /* TypeError: 'str' object is not callable */
    "{{ range(1000000)|list }}", /* OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (1 */
    "{% for a, b in [1, 2] %}{% endfor %}", /* TypeError: cannot unpack non-iterable int object */
    "{{ l|map('string')|length }}", /* TypeError: object of type 'generator' has no len() */
    "{{ 1 is divisibleby 0 }}", /* ZeroDivisionError: integer modulo by zero */
    "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", /* TypeError: macro 'm' takes not more than 1 argument(s) */
    "{{ d.items()|tojson }}", /* TypeError: Object of type dict_items is not JSON serializable */
    "{{ 'a' in 1 }}", /* TypeError: argument of type 'int' is not iterable */
    "{{ 1 in 'a' }}", /* TypeError: 'in <string>' requires string as left operand, not int */
    "{{ -'a' }}", /* TypeError: bad operand type for unary -: 'str' */
    "{{ n + 'x' }}", /* TypeError: unsupported operand type(s) for +: 'NoneType' and 'str' */
    "{{ 'x'.nomethod() }}", /* UndefinedError: 'str object' has no attribute 'nomethod' */
    "{# unterminated comment", /* TemplateSyntaxError: Missing end of comment tag */
    "{{ 1 }", /* TemplateSyntaxError: unexpected '}' */
    "{% raw %} no end", /* TemplateSyntaxError: Missing end of raw directive */
    "{{ 'abc'[:undefined_v] }}", /* TypeError: slice indices must be integers or None or have an __index__ method */
    "{{ d[1:] }}", /* TypeError: unhashable type: 'slice' */
    "{{ undefined_v[1:] }}", /* UndefinedError: 'undefined_v' is undefined */
    "{{ 1 + 2 ~ 3 }}", /* TypeError: unsupported operand type(s) for +: 'int' and 'str' */
    "{{ ''.join([1]) }}", /* TypeError: sequence item 0: expected str instance, int found */
    "{{ '%d' % 'x' }}", /* TypeError: %d format: a real number is required, not str */
};

/* Renders src over ctx; returns malloc'd output or NULL with err set (parse or render failure). */
static char *render(const char *src, const json_t *ctx, seek_err *err) {
    jinja_tmpl *t = jinja_parse(src, strlen(src), err);
    if (!t) return NULL;
    char *out = jinja_render(t, ctx, err);
    jinja_free(t);
    return out;
}

/* "L:C: message" with L and C numbers. */
static bool has_position(const char *msg) {
    int line, col;
    return sscanf(msg, "%d:%d:", &line, &col) == 2 && line >= 1 && col >= 1;
}

static void test_golden(void) {
    json_error_t jerr;
    json_t *ctx = json_loads(CTX_JSON, 0, &jerr);
    CHECK(ctx != NULL, "CTX_JSON parses: %s", jerr.text);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        seek_err err = { 0 };
        char *got = render(cases[i].src, ctx, &err);
        CHECK(got && !strcmp(got, cases[i].want), "case %zu: %s\n  want: %s\n  got:  %s", i, cases[i].src,
              cases[i].want, got ? got : err.msg);
        free(got);
    }
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        seek_err err = { 0 };
        char *got = render(error_cases[i], ctx, &err);
        CHECK(!got, "error case %zu should fail: %s -> %s", i, error_cases[i], got ? got : "");
        CHECK(got || has_position(err.msg), "error case %zu has no line:column: %s", i, err.msg);
        free(got);
    }
    json_decref(ctx);
}

static void test_error_details(void) {
    seek_err err = { 0 };
    char *out = render("line one\n  {{ raise_exception('Roles must alternate') }}", NULL, &err);
    CHECK(!out && !strcmp(err.msg, "2:6: Roles must alternate"), "raise_exception message: %s", err.msg);
    free(out);
    out = render("{% for x in y %}\n{% if x %}\n{% endfor %}", NULL, &err);
    CHECK(!out && has_position(err.msg), "mismatched end tag: %s", err.msg);
    free(out);
    out = render("{{ a.b }}", NULL, &err);
    CHECK(!out && strstr(err.msg, "'a' is undefined"), "undefined message: %s", err.msg);
    free(out);
    /* a NULL context is an empty one */
    out = render("[{{ x }}]", NULL, &err);
    CHECK(out && !strcmp(out, "[]"), "NULL context: %s", out ? out : err.msg);
    free(out);
}

static void expect_fail(const char *what, const char *src, const char *needle) {
    seek_err err = { 0 };
    uint64_t t0 = time_now_ns();
    char *out = render(src, NULL, &err);
    double secs = (double)(time_now_ns() - t0) / 1e9;
    CHECK(!out && strstr(err.msg, needle), "%s: want an error with '%s', got %s", what, needle, out ? "output" : err.msg);
    CHECK(secs < 20, "%s took %.1f s", what, secs);
    free(out);
}

static void test_limits(void) {
    expect_fail("output size", "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output larger");
    expect_fail("steps", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps");
    expect_fail("recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested too deeply");
    expect_fail("string growth", "{% set ns = namespace(s='xx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                "large");
    expect_fail("range", "{{ range(100001)|list }}", "Range too big");
    /* deep nesting in the source: the parser refuses before it could exhaust the stack */
    size_t n = 100000;
    char *deep = malloc(2 * n + 16);
    strcpy(deep, "{{ ");
    memset(deep + 3, '(', n);
    strcpy(deep + 3 + n, "1 }}");
    expect_fail("paren nesting", deep, "nested too deeply");
    /* a long chain of attribute lookups is parsed by a loop, but evaluating it recurses: bounded */
    strcpy(deep, "{{ x");
    for (size_t i = 0; i < 20000; i++) strcpy(deep + 4 + 2 * i, ".a");
    strcat(deep, " }}");
    expect_fail("attribute chain", deep, "nested too deeply");
    strcpy(deep, "{{ 1");
    for (size_t i = 0; i < 20000; i++) strcpy(deep + 4 + 2 * i, "+1");
    strcat(deep, " }}");
    expect_fail("operator chain", deep, "nested too deeply");
    free(deep);
}

static void test_chat(void) {
    json_error_t jerr;
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"},"
                              "{\"role\":\"assistant\",\"content\":\"yo\",\"thinking\":\"secret\"}]", 0, &jerr);
    json_t *tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", 0, &jerr);
    chat_input in = { msgs, tools, true, "<s>", "</s>" };
    seek_err err = { 0 };
    char *out = chat_render("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}"
                            "{{ m.thinking is defined }};{% endfor %}{{ tools|length }}{{ add_generation_prompt }}"
                            "{{ eos_token }}",
                            &in, &err);
    CHECK(out && !strcmp(out, "<s>user:hiFalse;assistant:yoFalse;1True</s>"), "chat_render: %s", out ? out : err.msg);
    free(out);
    in.tools = NULL;
    in.add_generation_prompt = false;
    out = chat_render("{{ tools is defined }}{{ add_generation_prompt }}", &in, &err);
    CHECK(out && !strcmp(out, "FalseFalse"), "chat_render without tools: %s", out ? out : err.msg);
    free(out);
    /* the caller's messages are not modified */
    CHECK(json_object_get(json_array_get(msgs, 1), "thinking") != NULL, "thinking kept in the caller's messages");
    out = chat_render("{{ raise_exception('nope') }}", &in, &err);
    CHECK(!out && strstr(err.msg, "nope"), "chat_render error: %s", err.msg);
    json_decref(msgs);
    json_decref(tools);

    CHECK(chat_prompt_opens_think("<｜Assistant｜><think>\n"), "opens think with newline");
    CHECK(chat_prompt_opens_think("x<think>"), "opens think");
    CHECK(chat_prompt_opens_think("<think> \t\n "), "opens think with spaces");
    CHECK(!chat_prompt_opens_think("<think>x"), "think then text");
    CHECK(!chat_prompt_opens_think("<think></think>\n"), "closed think");
    CHECK(!chat_prompt_opens_think(""), "empty prompt");
}

/* ---- fuzz ------------------------------------------------------------------------------------------ */

static const char *const fuzz_tokens[] = {
    "{{", "}}", "{%", "%}", "{%-", "-%}", "{#", "#}", "(", ")", "[", "]", "{", "}", "|", "'", "\"", " if ",
    " else ", " for x in ", "{% endfor %}", "{% endif %}", "loop.", "~", "*", "**", "//", ".", ",", ":", "-",
    " is ", " not ", " in ", "tojson", "|trim", "messages", "[-1]", "[::-1]", "ns.", "{% set x = ", "range(",
    "namespace(", "{% macro m() %}", "{% endmacro %}", "m()", "caller()", "{% raw %}", "{% endraw %}", "\\",
    "\n", " ", "\xc3", "\xff", "1e999", "9223372036854775807", "{% break %}", "{% continue %}", "none", "|map(",
    "|selectattr(", "|items", "|join", "|length", "is defined", "raise_exception(", "strftime_now('%Y')",
};

static char *mutate(const char *src, size_t n, const char *other, size_t on, size_t *out_n) {
    size_t cap = n + 4096;
    char *s = malloc(cap);
    memcpy(s, src, n);
    size_t len = n;
    int edits = 1 + (int)(rng_u64() % 3);
    for (int e = 0; e < edits; e++) {
        size_t pos = len ? rng_u64() % (len + 1) : 0;
        switch (rng_u64() % 6) {
        case 0: /* flip a byte */
            if (len) s[rng_u64() % len] = (char)(rng_u64() & 0xff);
            break;
        case 1: { /* delete a range */
            size_t k = len > pos ? rng_u64() % (len - pos + 1) : 0;
            if (k > 64) k = 64;
            memmove(s + pos, s + pos + k, len - pos - k);
            len -= k;
            break;
        }
        case 2:
        case 3: { /* insert a Jinja-looking token */
            const char *tok = fuzz_tokens[rng_u64() % (sizeof fuzz_tokens / sizeof fuzz_tokens[0])];
            size_t k = strlen(tok);
            if (len + k >= cap) break;
            memmove(s + pos + k, s + pos, len - pos);
            memcpy(s + pos, tok, k);
            len += k;
            break;
        }
        case 4: { /* splice in a piece of another template */
            size_t from = on ? rng_u64() % on : 0, k = on - from;
            if (k > 200) k = 200;
            if (len + k >= cap) break;
            memmove(s + pos + k, s + pos, len - pos);
            memcpy(s + pos, other + from, k);
            len += k;
            break;
        }
        default: { /* duplicate a range of itself */
            size_t from = len ? rng_u64() % len : 0, k = len - from;
            if (k > 300) k = 300;
            if (len + k >= cap) break;
            char piece[300];
            memcpy(piece, s + from, k);
            memmove(s + pos + k, s + pos, len - pos);
            memcpy(s + pos, piece, k);
            len += k;
        }
        }
    }
    s[len] = 0;
    *out_n = len;
    return s;
}

/* The shared/templates folder: $SEEK_TEMPLATES, or beside the checkout. */
static const char *templates_dir(void) {
    const char *cands[] = { getenv("SEEK_TEMPLATES"), "../shared/templates", "../../shared/templates",
                            "/work/shared/templates" };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        DIR *d = cands[i] ? opendir(cands[i]) : NULL;
        if (d) {
            closedir(d);
            return cands[i];
        }
    }
    return NULL;
}

static void test_fuzz(int iters) {
    char *srcs[32];
    size_t lens[32];
    int ns = 0;
    srcs[ns] = strdup("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                      "{% endif %}");
    lens[ns] = strlen(srcs[ns]);
    ns++;
    const char *dir = templates_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *ent;
    while (d && (ent = readdir(d)) && ns < 32) {
        size_t nl = strlen(ent->d_name);
        if (nl < 7 || strcmp(ent->d_name + nl - 6, ".jinja")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        seek_err err;
        srcs[ns] = fs_read_all(path, &lens[ns], &err);
        if (srcs[ns]) ns++;
    }
    if (d) closedir(d);
    CHECK(ns > 1, "fuzz: found the shared templates (%d)", ns - 1);

    json_error_t jerr;
    json_t *ctx = json_loads(
        "{\"messages\":[{\"role\":\"system\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":\"hi {{x}}\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"abcdefghi\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1.5}}}]},{\"role\":\"tool\",\"tool_call_id\":\"abcdefghi\","
        "\"content\":\"ok\"},{\"role\":\"assistant\",\"content\":\"<think>t</think>done\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],"
        "\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}",
        0, &jerr);
    rng_state = 0x5eed;
    int parsed = 0, rendered = 0;
    for (int it = 0; it < iters; it++) {
        int a = (int)(rng_u64() % (uint64_t)ns), b = (int)(rng_u64() % (uint64_t)ns);
        size_t n;
        char *src = mutate(srcs[a], lens[a], srcs[b], lens[b], &n);
        seek_err err = { 0 };
        jinja_tmpl *t = jinja_parse(src, n, &err);
        if (t) {
            parsed++;
            char *out = jinja_render(t, ctx, &err);
            if (out) rendered++;
            else CHECK(err.msg[0] != 0, "fuzz %d: render failed without a message", it);
            free(out);
            jinja_free(t);
        } else {
            CHECK(err.msg[0] != 0, "fuzz %d: parse failed without a message", it);
        }
        free(src);
    }
    printf("fuzz: %d mutated templates, %d parsed, %d rendered\n", iters, parsed, rendered);
    CHECK(parsed > 0 && rendered > 0, "fuzz exercised the renderer (%d parsed, %d rendered)", parsed, rendered);
    json_decref(ctx);
    for (int i = 0; i < ns; i++) free(srcs[i]);
}

int main(int argc, char **argv) {
    base_init();
    test_golden();
    test_error_details();
    test_limits();
    test_chat();
    test_fuzz(argc > 1 ? atoi(argv[1]) : 3000);
    return check_done("test_jinja");
}

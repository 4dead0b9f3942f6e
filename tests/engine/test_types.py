"""Editor support cannot drift from the modules: every module of the module
table (`halo help modules`) has a LuaCATS annotation file in types/halo/,
and every function docs/modules.md documents for it (`mod.fn`, and the
methods of what it returns, `obj:method`) is annotated there."""
import os
import re
import unittest

from halotest import SOURCE, run

TYPES = os.path.join(SOURCE, "types", "halo")
# methods of Lua's own strings (`data:sub(n)`), which the docs use too
STRING_METHODS = {"byte", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep", "reverse", "sub",
                  "upper", "pack", "unpack"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def modules():
    out = run(["help", "modules"]).out
    return re.findall(r"^  (\w+) ", out, re.M)


def documented(name):
    """`name.fn` and `x:method` in the inline code of the module's
    section of docs/modules.md (up to the next level-2 heading)."""
    doc = read(os.path.join(SOURCE, "docs", "modules.md"))
    m = re.search(r"^## " + re.escape(name) + r"\n(.*?)(?=^## |\Z)", doc, re.M | re.S)
    assert m, f"docs/modules.md has no section ## {name}"
    # inline code only: the examples in ``` blocks call the helpers of
    # scripts/lib too (api:delete_template), which are not the module's
    prose = re.sub(r"```.*?```", " ", m.group(1), flags=re.S)
    code = " ".join(re.findall(r"`([^`]+)`", prose))
    # not a path (/var/run/docker.sock) nor a field of something else
    functions = set(re.findall(r"(?<![\w/.-])" + re.escape(name) + r"\.(\w+)", code))
    methods = set(re.findall(r"\b[a-z]\w*:(\w+)\s*[({]", code)) - STRING_METHODS
    return functions, methods


class Types(unittest.TestCase):
    def test_every_module_has_annotations(self):
        names = modules()
        self.assertGreater(len(names), 10)
        for name in names:
            path = os.path.join(TYPES, name + ".lua")
            self.assertTrue(os.path.exists(path), f"no annotations for module {name}: {path}")
            self.assertRegex(read(path), r"^---@meta " + name + r"\n", path)

    def test_every_documented_function_is_annotated(self):
        every = "\n".join(read(os.path.join(TYPES, f)) for f in os.listdir(TYPES))
        annotated_methods = set(re.findall(r"^function \w+:(\w+)\(", every, re.M))
        for name in modules():
            text = read(os.path.join(TYPES, name + ".lua"))
            functions, methods = documented(name)
            for fn in sorted(functions):
                pattern = r"(?m)^(function " + name + r"\." + fn + r"\(|" + name + r"\." + fn + r" =)"
                self.assertTrue(re.search(pattern, text),
                                f"docs/modules.md documents {name}.{fn}; types/halo/{name}.lua does not annotate it")
            for method in sorted(methods):
                self.assertIn(method, annotated_methods,
                              f"docs/modules.md ({name}) documents :{method}(...); no annotation in types/halo has it")

    def test_the_check_context_and_spec(self):
        """halo.T has every method of the context (engine/check/context.lua)
        and halo.CheckSpec every key validate accepts."""
        check = read(os.path.join(TYPES, "check.lua"))
        context = read(os.path.join(SOURCE, "engine", "check", "context.lua"))
        for method in re.findall(r"^  function t:(\w+)\(", context, re.M):
            self.assertIn(f"function T:{method}(", check)
        keys = re.search(r"local SPEC_KEYS = \{(.*?)\}", context, re.S).group(1)
        for key in re.findall(r"(\w+) = true", keys):
            self.assertRegex(check, r"---@field " + key + r"\??\s")

    def test_the_stack_globals_and_luarc(self):
        stack = read(os.path.join(TYPES, "stack.lua"))
        stack_c = read(os.path.join(SOURCE, "engine", "check", "stack.c"))
        import json
        luarc = json.loads(read(os.path.join(SOURCE, "scripts", ".luarc.json")))
        self.assertEqual(luarc["workspace.library"], ["../types"])
        for name in ("env", "secret", "include", "stack_dir"):
            self.assertIn(f'lua_setfield(L, -2, "{name}")', stack_c)
            self.assertRegex(stack, r"(?m)^(function " + name + r"\(|" + name + r" =)")
            self.assertIn(name, luarc["diagnostics.globals"])


if __name__ == "__main__":
    unittest.main()

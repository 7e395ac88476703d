"""YAML written by users, read safely: a size limit, UTF-8 text only, aliases counted and their
expansion measured without expanding them (a nine-line "billion laughs" file must not take the
machine), a nesting depth limit, and duplicate keys refused (YAML would let the last one win
silently). Every refusal names the file and, where it has one, the line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .limits import how_to_raise, limit


def load_mapping(path: Path, what: str = "a YAML file") -> tuple[dict, dict[str, int]]:
    """The mapping in ``path`` and the 1-based line of every key, by dotted path.

    Raises:
        ConfigError: unreadable, too large, not UTF-8 text, a YAML syntax error (with its line),
            too many aliases, too large once expanded, too deep, a duplicate key, or not a
            mapping.
    """
    try:
        size = path.stat().st_size
        if size > limit("yaml_bytes"):
            raise ConfigError("", f"the file is {size:,} bytes; {what} is a few kB.",
                              file=path, hint=how_to_raise("yaml_bytes", size))
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read the file: {exc.strerror}.", file=path) from None
    if b"\x00" in raw:
        raise ConfigError("", f"the file holds NUL bytes: it is binary, not {what}.", file=path,
                          hint="Give the path of a YAML text file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError("", f"the file is not UTF-8 text (byte {exc.start}): not {what}.", file=path, line=line,
                          hint="Save it as UTF-8 text.") from None
    depth, line = nesting_depth(text)
    if depth > limit("yaml_depth"):  # before PyYAML, whose composer recurses and whose scanner slows
        raise ConfigError("", f"the file nests at least {depth} levels deep.", file=path, line=line,
                          hint=how_to_raise("yaml_depth", depth))
    loader = yaml.SafeLoader(text)
    try:
        aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
        if aliases > limit("yaml_aliases"):
            raise ConfigError("", f"the file uses {aliases} YAML aliases (*name).", file=path,
                              hint=how_to_raise("yaml_aliases", aliases))
        node = loader.get_single_node()
        if node is None:
            raise ConfigError("", f"the file is empty: {what} is a YAML mapping (key: value).", file=path)
        _check_shape(node, path)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, path) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError("", f"{what} must be a YAML mapping (key: value), not a {type(data).__name__}.", file=path)
    lines: dict[str, int] = {}
    _collect_lines(node, "", lines, set())
    return data, lines


def nesting_depth(text: str) -> tuple[int, int]:
    """An upper estimate of how deep YAML ``text`` nests, and the 1-based line where it is
    deepest, in one pass over the characters (no recursion, linear time): flow brackets
    (``[``, ``{``) outside quotes and comments, plus the block levels open at each line (indents
    deeper than the enclosing ones, and each leading ``- `` or ``? ``)."""
    deepest, where = 0, 1
    indents: list[int] = []  # the open block levels' indents
    flow, quote, line = 0, "", 1
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        ch = text[i]
        if at_line_start and not quote and flow == 0:
            j = i
            while j < n and text[j] == " ":
                j += 1
            if j < n and text[j] not in "\n#":
                while indents and indents[-1] >= j - i:
                    indents.pop()
                indents.append(j - i)
                items = 0
                while j + 1 < n and text[j] in "-?" and text[j + 1] in " \n":  # "- - - x": a level each
                    items += 1
                    j += 2
                    while j < n and text[j] == " ":
                        j += 1
                if len(indents) + items > deepest:
                    deepest, where = len(indents) + items, line
            i, ch = j, text[j] if j < n else ""
            at_line_start = False
            if not ch:
                break
        if ch == "\n":
            line, at_line_start = line + 1, True
        elif quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"" and (i == 0 or text[i - 1] in " \t[{,:-\n"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t\n"):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch in "[{":
            flow += 1
            if len(indents) + flow > deepest:
                deepest, where = len(indents) + flow, line
        elif ch in "]}":
            flow = max(0, flow - 1)
        i += 1
    return deepest, where


def _check_shape(root: yaml.Node, path: Path) -> None:
    """Expanded size and depth (memoised per node: shared nodes are aliases), recursive aliases,
    duplicate keys."""
    sizes: dict[int, tuple[int, int]] = {}
    visiting: set[int] = set()

    def measure(node: yaml.Node) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise ConfigError("", "a YAML alias refers to a node that contains it (a recursive structure).",
                              file=path, line=node.start_mark.line + 1)
        visiting.add(key)
        count, depth = 1, 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        raise ConfigError(str(k.value), f"the key appears twice (first on line {seen[k.value]}); "
                                          "YAML would silently keep the last one.", file=path,
                                          line=k.start_mark.line + 1, hint="Keep one of them.")
                    seen[k.value] = k.start_mark.line + 1
                children = [measure(k), measure(v)]
                count += sum(c for c, _ in children)
                depth = max(depth, 1 + max(d for _, d in children))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                c, d = measure(item)
                count, depth = count + c, max(depth, 1 + d)
        visiting.discard(key)
        if count > limit("yaml_nodes"):
            raise ConfigError("", f"the file expands to over {count:,} YAML nodes (aliases repeat what they "
                              "name).", file=path, line=node.start_mark.line + 1,
                              hint=how_to_raise("yaml_nodes", count))
        if depth > limit("yaml_depth"):
            raise ConfigError("", f"the file nests {depth} levels deep.", file=path,
                              line=node.start_mark.line + 1, hint=how_to_raise("yaml_depth", depth))
        sizes[key] = (count, depth)
        return sizes[key]

    measure(root)


def _syntax_error(exc: yaml.YAMLError, path: Path) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    opened = f" {context} that starts on line {context_mark.line + 1}:" if context and context_mark else ""
    return ConfigError(
        "", f"YAML syntax error{opened} {problem}" + (f" (column {mark.column + 1})." if mark else "."),
        file=path, line=mark.line + 1 if mark else None,
        hint="Check for an unclosed bracket or quote, the indentation, and a ': ' after every key.")


def _collect_lines(node: yaml.Node, prefix: str, lines: dict[str, int], seen: set[int]) -> None:
    """Lines of keys and items by dotted path; a node reached again through an alias is not
    walked again (its lines are those of its anchor)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            lines[path] = key.start_mark.line + 1
            _collect_lines(value, path, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}.{i}"] = item.start_mark.line + 1
            _collect_lines(item, f"{prefix}.{i}", lines, seen)

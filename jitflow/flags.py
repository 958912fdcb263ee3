"""`tf.flags` / `tf.app.flags` as in TF 1.x: command-line flags defined with `DEFINE_string`, `DEFINE_integer`,
`DEFINE_float`, `DEFINE_boolean` (`DEFINE_bool`), `DEFINE_list`, `DEFINE_enum`, read through `FLAGS`.

TF 1.x wraps absl's flags so that the first read of `FLAGS.<name>` parses `sys.argv` (unknown flags are left
alone); `tf.app.run` parses too and hands the unparsed rest to `main`. Accepted spellings are absl's:
`--name=value`, `--name value`, `-name=value`, booleans as `--name`, `--noname`, `--name=false`; `--` ends
the flags. A bad value raises `IllegalFlagValueError`, a second definition of a name `DuplicateFlagError`.
"""
from __future__ import annotations

import sys

from .errors import UnsupportedError


class Error(Exception):
    """Base of the flag errors (absl's `flags.Error`)."""


class DuplicateFlagError(Error):
    pass


class IllegalFlagValueError(Error):
    pass


class UnrecognizedFlagError(Error):
    pass


_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")


class _Flag:
    def __init__(self, name, default, help_text, parse, boolean=False):
        self.name, self.help, self.parse, self.boolean = name, help_text, parse, boolean
        self.default = None if default is None else self._convert(default)
        self.value = self.default
        self.present = 0

    def _convert(self, raw):
        try:
            return self.parse(raw)
        except (TypeError, ValueError) as exc:
            raise IllegalFlagValueError(f"flag --{self.name}={raw}: {exc}") from None


def _parse_bool(raw):
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int,)) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in _TRUE:
        return True
    if isinstance(raw, str) and raw.lower() in _FALSE:
        return False
    raise ValueError("Non-boolean argument to boolean flag")


def _parse_int(raw):
    if isinstance(raw, bool):
        raise ValueError("Expect argument to be a string or int, found <class 'bool'>")
    if isinstance(raw, int):
        return raw
    return int(str(raw), 0)


def _parse_float(raw):
    return float(raw)


def _parse_list(raw):
    if isinstance(raw, (list, tuple)):
        return [str(v) for v in raw]
    return [v.strip() for v in str(raw).split(",") if v.strip()] if raw != "" else []


class FlagValues:
    """The flag registry; `FLAGS.name` reads a value (parsing `sys.argv` first, as TF 1.x does)."""

    def __init__(self):
        object.__setattr__(self, "_flags", {})
        object.__setattr__(self, "_parsed", False)

    # ---- definition
    def _define(self, flag):
        if flag.name in self._flags:
            raise DuplicateFlagError(f"The flag '{flag.name}' is defined twice.")
        self._flags[flag.name] = flag
        return flag

    # ---- parsing
    def __call__(self, argv, known_only=False):
        """Parses `argv` (argv[0] is the program); returns argv[0] plus the arguments not consumed."""
        argv = list(argv)
        rest = argv[:1]
        args = argv[1:]
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                rest.extend(args[i:])
                break
            if not arg.startswith("-") or arg == "-":
                rest.append(arg)
                continue
            body = arg.lstrip("-")
            name, eq, value = body.partition("=")
            flag = self._flags.get(name)
            if flag is None and name.startswith("no") and not eq:
                negated = self._flags.get(name[2:])
                if negated is not None and negated.boolean:
                    negated.value, negated.present = False, negated.present + 1
                    continue
            if flag is None:
                if known_only:
                    rest.append(arg)
                    continue
                raise UnrecognizedFlagError(f"Unknown command line flag '{name}'")
            if not eq:
                if flag.boolean:
                    value = "true"
                elif i < len(args):
                    value = args[i]
                    i += 1
                else:
                    raise IllegalFlagValueError(f"Flag --{name} must have a value other than None.")
            flag.value = flag._convert(value)
            flag.present += 1
        object.__setattr__(self, "_parsed", True)
        return rest

    def is_parsed(self):
        return self._parsed

    def mark_as_parsed(self):
        object.__setattr__(self, "_parsed", True)

    # ---- access
    def __getattr__(self, name):
        flags = object.__getattribute__(self, "_flags")
        if name not in flags:
            raise AttributeError(name)
        if not object.__getattribute__(self, "_parsed"):
            self(sys.argv, known_only=True)      # TF 1.x: the first read parses the command line
        return flags[name].value

    def __setattr__(self, name, value):
        if name not in self._flags:
            raise AttributeError(name)
        self._flags[name].value = value

    def __contains__(self, name):
        return name in self._flags

    def __iter__(self):
        return iter(self._flags)

    def __getitem__(self, name):
        return self._flags[name]

    def flag_values_dict(self):
        return {name: flag.value for name, flag in self._flags.items()}


FLAGS = FlagValues()


def _check_extra(fn, kwargs):
    if kwargs:
        raise UnsupportedError(f"tf.flags.{fn}: argument(s) {', '.join(sorted(kwargs))} "
                               "are not supported by jitflow")


def _registry(flag_values):
    return FLAGS if flag_values is None else flag_values


def DEFINE_string(name, default, help, flag_values=None, **kwargs):  # noqa: N802,A002
    _check_extra("DEFINE_string", kwargs)
    return _registry(flag_values)._define(_Flag(name, default, help, str))


def DEFINE_boolean(name, default, help, flag_values=None, **kwargs):  # noqa: N802,A002
    _check_extra("DEFINE_boolean", kwargs)
    return _registry(flag_values)._define(_Flag(name, default, help, _parse_bool, boolean=True))


DEFINE_bool = DEFINE_boolean


def _bounded(parse, lower, upper):
    def check(raw):
        value = parse(raw)
        if lower is not None and value < lower:
            raise ValueError(f"{value} is not >= {lower}")
        if upper is not None and value > upper:
            raise ValueError(f"{value} is not <= {upper}")
        return value
    return check


def DEFINE_integer(name, default, help, lower_bound=None, upper_bound=None, flag_values=None,  # noqa: N802,A002
                   **kwargs):
    _check_extra("DEFINE_integer", kwargs)
    return _registry(flag_values)._define(_Flag(name, default, help, _bounded(_parse_int, lower_bound, upper_bound)))


def DEFINE_float(name, default, help, lower_bound=None, upper_bound=None, flag_values=None,  # noqa: N802,A002
                 **kwargs):
    _check_extra("DEFINE_float", kwargs)
    return _registry(flag_values)._define(_Flag(name, default, help,
                                                _bounded(_parse_float, lower_bound, upper_bound)))


def DEFINE_list(name, default, help, flag_values=None, **kwargs):  # noqa: N802,A002
    _check_extra("DEFINE_list", kwargs)
    return _registry(flag_values)._define(_Flag(name, default, help, _parse_list))


def DEFINE_enum(name, default, enum_values, help, flag_values=None, **kwargs):  # noqa: N802,A002
    _check_extra("DEFINE_enum", kwargs)
    allowed = list(enum_values)

    def parse(raw):
        if raw not in allowed:
            raise ValueError(f"value should be one of <{'|'.join(allowed)}>")
        return raw
    return _registry(flag_values)._define(_Flag(name, default, help, parse))


from .missing_names import module_getattr as _module_getattr  # noqa: E402

__getattr__ = _module_getattr(__name__, "tf.flags")

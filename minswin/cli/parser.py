"""The one argparse parser every `minswin` command uses (and every command added later gets).

`Parser` is an ArgumentParser whose errors are one line on stderr, exit status 2, naming the
option as the user typed it, what was expected and what came: argparse's own messages
("argument --lr: invalid float value: 'abc'") are rewritten into that form. Sub-command
parsers made with `add_subparsers` are of the same class, so a new command or a new flag
inherits all of it. `--help` goes through `HelpFormatter`, which shows each option's default.

`flag_as_typed` and `name_the_flag` turn a library error that names a Python parameter
("heads: expected 0 <= head < 3, got 9") into one that names the flag ("--head: ...").
"""
import argparse
import re
import sys

_INVALID_VALUE = re.compile(r"^argument (?P<arg>[^:]+): invalid (?P<kind>\w+) value: "
                            r"(?P<got>.*)$", re.S)
_INVALID_CHOICE = re.compile(r"^argument (?P<arg>[^:]+): invalid choice: (?P<got>.*?) "
                             r"\(choose from (?P<choices>.*)\)$", re.S)
_ARGUMENT = re.compile(r"^argument (?P<arg>[^:]+): (?P<rest>.*)$", re.S)
_KINDS = {"int": "an integer", "float": "a number", "_ints": "comma-separated integers"}


def _first_flag(arg):
    """'-o/--output' -> '--output'; 'COMMAND' stays."""
    names = arg.split("/")
    longs = [n for n in names if n.startswith("--")]
    return (longs or names)[0]


def _one_line(text):
    return " ".join(str(text).split())


def rewrite_argparse_message(message, prog):
    """argparse's error message -> 'FLAG: expected ..., got ...' (one line)."""
    m = _INVALID_VALUE.match(message)
    if m:
        kind = _KINDS.get(m["kind"], f"a {m['kind']} value")
        return f"{_first_flag(m['arg'])}: expected {kind}, got {m['got']}"
    m = _INVALID_CHOICE.match(message)
    if m:
        choices = m["choices"].replace("'", "")
        return f"{_first_flag(m['arg'])}: expected one of {choices}, got {m['got']}"
    m = _ARGUMENT.match(message)
    if m:                                 # a type function's own message, or a missing value
        rest = m["rest"]
        if rest.startswith("expected one argument"):
            rest = "expected a value after it, got none"
        elif rest.startswith("ignored explicit argument"):
            rest = f"expected no value, got {rest.split(' ', 3)[-1]}"
        return f"{_first_flag(m['arg'])}: {rest}"
    if message.startswith("unrecognized arguments: "):
        got = message.split(": ", 1)[1]
        return (f"unknown argument {got}: expected one of the options of `{prog} --help`")
    if message.startswith("the following arguments are required: "):
        missing = message.split(": ", 1)[1]
        return f"{missing}: expected a value, got none (see `{prog} --help`)"
    return message


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; each option's help line ends with its default, unless it
    names the default already or the option is a switch (store_true) or has no default."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, argparse.SUPPRESS)
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        return f"{text} (default: {default})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser with one-line errors (exit 2) and defaults in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        if kwargs["formatter_class"] is argparse.RawDescriptionHelpFormatter:
            kwargs["formatter_class"] = HelpFormatter          # the defaults, in every command
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown option is reported by the sub-command it was given
        to (`minswin tour: error: unknown argument --bogus ...`), not by `minswin`."""
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            self._chosen(args).error(f"unrecognized arguments: {' '.join(extras)}")
        return args

    def _chosen(self, args):
        """The deepest sub-command parser that `args` went through."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(args, action.dest, None))
                if chosen is not None:
                    return chosen._chosen(args)
        return self

    def error(self, message):
        print(f"{self.prog}: error: {_one_line(rewrite_argparse_message(message, self.prog))}",
              file=sys.stderr)
        sys.exit(2)


def _actions(parser):
    """Every action of `parser` and of the sub-command parsers under it."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def flag_as_typed(parser, argv, dest):
    """The option for `dest` as the user typed it ('--head', or an abbreviation argparse
    accepted), the long option plus ' (not given)' where it was not typed, or the
    positional's metavar; None when no option or positional has that dest."""
    for action in _actions(parser):
        if action.dest != dest or isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            return action.metavar or dest.upper()
        for tok in argv:
            flag = tok.split("=", 1)[0]
            if flag.startswith("-") and any(o == flag or (flag.startswith("--") and
                                                          o.startswith(flag))
                                            for o in action.option_strings):
                return flag
        return f"{_first_flag('/'.join(action.option_strings))} (not given)"
    return None


_LEADING_NAME = re.compile(r"^(?P<name>[A-Za-z_][\w]*): (?P<rest>.*)$", re.S)


def name_the_flag(message, parser, argv, param_flags=None):
    """'heads: expected ...' -> '--head: expected ...' when the library's parameter name
    (`heads`) is, through `param_flags` {parameter: dest} or by its own name, a dest of this
    command's parser. Other messages are returned unchanged."""
    m = _LEADING_NAME.match(message)
    if not m:
        return message
    dest = (param_flags or {}).get(m["name"], m["name"])
    flag = flag_as_typed(parser, argv, dest)
    if flag is None:
        return message
    return f"{flag}: {m['rest']}"

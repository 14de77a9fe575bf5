"""The grammar is conflict-free: Lark's strict mode rejects terminal collisions and LALR
shift/reduce conflicts that the normal build resolves silently."""
from lark import Lark

from infscale_dsl.language.parse import grammar_path, law_parser


def test_grammar_builds_in_strict_mode():
    Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", strict=True)


def test_parser_is_built_once():
    assert law_parser() is law_parser()


def test_grammar_file_is_found_in_the_repository():
    assert grammar_path().name == "law.lark" and grammar_path().is_file()

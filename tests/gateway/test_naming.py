"""Public names and URIs: valid for clients, deterministic, collision-free across servers, exact round trips."""

from __future__ import annotations

import hashlib
import random

import pytest

from gateway.core.naming import (
    NAME_PATTERN,
    SEPARATOR,
    NameMap,
    is_slug,
    parse_uri,
    public_name,
    public_template,
    public_uri,
    slug,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("github", "github"),
        ("My Server", "my-server"),
        ("my_server", "my-server"),
        ("data.analysis  server", "data-analysis-server"),
        ("--edge--", "edge"),
        ("a__b", "a-b"),
        ("Café Zürich", "cafe-zurich"),
        ("\uff26\uff35\uff2c\uff2c width", "full-width"),  # fullwidth letters
    ],
)
def test_slug_maps_server_names_to_lowercase_alphanumerics_and_dashes(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_slug_of_a_name_with_nothing_usable_falls_back_to_a_hashed_server_name() -> None:
    result = slug("日本語")
    assert result == "server-" + hashlib.sha256("日本語".encode()).hexdigest()[:6]
    assert slug("___") != slug("!!!")


def test_long_slug_is_cut_to_24_characters_with_a_hash_suffix() -> None:
    a = slug("a-very-long-server-name-that-goes-on-and-on")
    b = slug("a-very-long-server-name-that-goes-on-and-on-too")
    assert len(a) == 24 and len(b) == 24
    assert a.startswith("a-very-long-serve") and a != b
    assert a.endswith(hashlib.sha256(b"a-very-long-server-name-that-goes-on-and-on").hexdigest()[:6])


def test_slug_is_idempotent_and_never_contains_the_separator() -> None:
    rng = random.Random(7)
    for _ in range(500):
        name = "".join(rng.choice("aB_ -.é9__") for _ in range(rng.randint(0, 40)))
        result = slug(name)
        assert is_slug(result), name
        assert SEPARATOR not in result and "_" not in result
        assert slug(result) == result


def test_valid_name_is_published_as_slug_double_underscore_name() -> None:
    assert public_name("github", "create_issue") == "github__create_issue"


def test_seventy_character_tool_name_is_shortened_validly_and_routes_back() -> None:
    tool = "t" * 70
    names = NameMap()
    public = names.add("everything", tool)
    assert NAME_PATTERN.match(public)
    assert len(public) == 64
    assert public.startswith("everything__")
    assert public.endswith("-" + hashlib.sha256(tool.encode()).hexdigest()[:8])
    assert names.resolve(public) == ("everything", tool)


def test_name_with_invalid_characters_is_sanitised_and_resolves_back_exactly() -> None:
    names = NameMap()
    public = names.add("fs", "tool.name/with spaces")
    assert NAME_PATTERN.match(public)
    assert public.startswith("fs__tool_name_with_spaces-")
    assert names.resolve(public) == ("fs", "tool.name/with spaces")


def test_public_name_is_deterministic_across_maps() -> None:
    assert NameMap().add("fs", "x" * 80) == NameMap().add("fs", "x" * 80) == public_name("fs", "x" * 80)


def test_public_name_refuses_a_server_name_that_is_not_a_slug() -> None:
    with pytest.raises(ValueError, match="slug"):
        public_name("my__server", "tool")


def test_same_tool_on_two_servers_gets_two_names() -> None:
    names = NameMap()
    assert names.add("a", "search") != names.add("b", "search")
    assert names.resolve("a__search") == ("a", "search")
    assert names.resolve("b__search") == ("b", "search")


def test_add_is_idempotent_and_unknown_names_do_not_resolve() -> None:
    names = NameMap()
    assert names.add("a", "x") == names.add("a", "x") == "a__x"
    assert names.resolve("a__y") is None
    assert names.resolve("x") is None


def test_remove_server_forgets_only_that_server() -> None:
    names = NameMap()
    names.add("a", "x")
    long_public = names.add("a", "y" * 90)
    names.add("b", "x")
    names.remove_server("a")
    assert names.resolve("a__x") is None
    assert names.resolve(long_public) is None
    assert names.resolve("b__x") == ("b", "x")
    assert names.names("a") == {}


def test_two_originals_with_the_same_public_form_are_refused() -> None:
    names = NameMap()
    long_name = "q" * 80
    public = names.add("s", long_name)
    impostor = public.removeprefix("s__")  # a valid name that publishes as itself: the same string
    with pytest.raises(ValueError, match="both publish as"):
        names.add("s", impostor)
    assert names.resolve(public) == ("s", long_name)


def _random_name(rng: random.Random) -> str:
    alphabet_ranges = [(0x20, 0x7E), (0xA0, 0x2FF), (0x400, 0x4FF), (0x4E00, 0x4FFF), (0x1F600, 0x1F64F)]
    chars = []
    for _ in range(rng.randint(1, 90)):
        low, high = rng.choice(alphabet_ranges)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def test_random_unicode_names_are_valid_unique_and_round_trip() -> None:
    rng = random.Random(20261122)
    names = NameMap()
    published: dict[str, tuple[str, str]] = {}
    servers = [slug(s) for s in ("alpha", "Beta Server", "x" * 40, "日本")]
    for _ in range(2000):
        server, tool = rng.choice(servers), _random_name(rng)
        public = names.add(server, tool)
        assert NAME_PATTERN.match(public), (server, tool, public)
        assert public.startswith(server + SEPARATOR)
        assert published.setdefault(public, (server, tool)) == (server, tool)
        assert names.resolve(public) == (server, tool)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///tmp/report.csv",
        "https://example.com/a b?x=1&y=2#frag",
        "db://table?query=select * from t#part",
        "note://日本語/😀",
        "weird://100%25/%zz/%",
        "",
        "harbor://other/nested%2F",
        "\udcff lone surrogate",
    ],
)
def test_resource_uri_round_trips_exactly(uri: str) -> None:
    public = public_uri("docs", uri)
    assert public.startswith("harbor://docs/")
    assert " " not in public and "#" not in public and "?" not in public
    assert public.isascii()
    assert parse_uri(public) == ("docs", uri)


def test_readable_uris_stay_readable() -> None:
    assert public_uri("fs", "file:///tmp/a.txt") == "harbor://fs/file:///tmp/a.txt"


def test_parse_uri_ignores_foreign_uris_and_tolerates_case_folding() -> None:
    assert parse_uri("file:///tmp/a") is None
    assert parse_uri("harbor://bad_slug/x") is None
    assert parse_uri("harbor://noslash") is None
    assert parse_uri("HARBOR://Docs/file%3F") == ("docs", "file?")


def test_template_keeps_placeholders_usable_and_expansion_parses_back() -> None:
    template = public_template("fs", "file:///logs/{name}.txt?x={x}")
    assert template == "harbor://fs/file:///logs/{name}.txt%3Fx%3D{x}"
    expanded = template.replace("{name}", "today").replace("{x}", "1")
    assert parse_uri(expanded) == ("fs", "file:///logs/today.txt?x=1")


def test_template_with_operators_and_encoded_literals() -> None:
    template = public_template("db", "db://my table/{+path}{?q,limit}")
    assert template == "harbor://db/db://my%20table/{+path}{?q,limit}"
    assert parse_uri("harbor://db/db://my%20table/a/b?q=1") == ("db", "db://my table/a/b?q=1")


def test_sync_leaves_out_every_name_of_a_clash_whatever_the_order() -> None:
    crafted = public_name("mimic", "get.weather").removeprefix("mimic__")  # equals the other's shortened form
    for order in (["get.weather", crafted, "fine"], [crafted, "fine", "get.weather"]):
        names = NameMap()
        clashes = names.sync("mimic", order)
        assert clashes == {f"mimic__{crafted}": sorted(["get.weather", crafted])}
        assert names.resolve(f"mimic__{crafted}") is None and names.resolve("mimic__fine") == ("mimic", "fine")


def test_sync_replaces_a_servers_names_and_never_touches_another_server() -> None:
    names = NameMap()
    names.sync("a", ["one", "two"])
    names.add("b", "one")
    names.sync("a", ["two", "three"])
    assert names.resolve("a__one") is None and names.resolve("a__three") == ("a", "three")
    assert names.resolve("b__one") == ("b", "one")
    shortened = public_name("a", "x" * 70)
    assert names.sync("a", ["x" * 70, shortened.removeprefix("a__")])  # a clash in a...
    assert names.resolve("b__one") == ("b", "one")  # ...is a's alone

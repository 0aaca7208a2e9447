"""Per-identity views: server filters for everyone, then rules by identity glob or scope."""

from __future__ import annotations

from gateway.config import PolicyRule, ToolFilter
from gateway.policy.auth import ANONYMOUS, Identity
from gateway.policy.views import ToolPolicy, compile_globs

ALICE = Identity("alice")
BOB = Identity("bob", frozenset({"reader"}))
OPS = Identity("ops-eu")


def test_no_rules_and_no_filters_allow_everything_to_everyone() -> None:
    policy = ToolPolicy([], {})
    assert policy.allows(ANONYMOUS, "any", "tool")
    assert policy.allows_server(ANONYMOUS, "any")


def test_server_filter_allow_globs_apply_to_everyone() -> None:
    policy = ToolPolicy([], {"gh": ToolFilter(allow=["*issue*", "search_?"])})
    assert policy.allows(ALICE, "gh", "create_issue")
    assert policy.allows(ALICE, "gh", "search_x")
    assert not policy.allows(ALICE, "gh", "search_xy")
    assert not policy.allows(ALICE, "gh", "push")
    assert policy.allows(ALICE, "other", "push")


def test_deny_beats_allow() -> None:
    policy = ToolPolicy([], {"gh": ToolFilter(allow=["*"], deny=["delete_*"])})
    assert policy.allows(ALICE, "gh", "create_repo")
    assert not policy.allows(ALICE, "gh", "delete_repo")


def test_globs_are_case_sensitive_and_anchored() -> None:
    pattern = compile_globs(["read*"])
    assert pattern.match("read_file") and not pattern.match("Read_file") and not pattern.match("xread")
    assert compile_globs([]).match("anything") is None


def test_identity_glob_rules_grant_matching_servers_and_tools_only() -> None:
    policy = ToolPolicy(
        [PolicyRule(identities=["alice"]), PolicyRule(identities=["ops-*"], servers=["infra*"], tools=["get_*"])],
        {},
    )
    assert policy.allows(ALICE, "gh", "anything")
    assert policy.allows(OPS, "infra-eu", "get_nodes")
    assert not policy.allows(OPS, "infra-eu", "delete_nodes")
    assert not policy.allows(OPS, "gh", "get_issue")
    assert not policy.allows(BOB, "gh", "anything")
    assert not policy.allows(ANONYMOUS, "gh", "anything")


def test_scope_based_rule_applies_to_holders_of_the_scope() -> None:
    policy = ToolPolicy([PolicyRule(scopes=["reader", "auditor"], tools=["read_*", "list_*"])], {})
    assert policy.allows(BOB, "fs", "read_file")
    assert not policy.allows(BOB, "fs", "write_file")
    assert not policy.allows(ALICE, "fs", "read_file")
    assert policy.allows(Identity("carol", frozenset({"auditor", "x"})), "fs", "list_dir")


def test_rule_without_identities_or_scopes_applies_to_everyone() -> None:
    policy = ToolPolicy([PolicyRule(servers=["public"])], {})
    assert policy.allows(ANONYMOUS, "public", "t")
    assert not policy.allows(ALICE, "private", "t")


def test_rules_are_a_union_and_filters_still_apply_on_top() -> None:
    policy = ToolPolicy(
        [PolicyRule(identities=["alice"], servers=["gh"]), PolicyRule(scopes=["reader"], servers=["fs"])],
        {"gh": ToolFilter(deny=["delete_*"])},
    )
    assert policy.allows(ALICE, "gh", "create_issue")
    assert not policy.allows(ALICE, "gh", "delete_repo")
    assert not policy.allows(ALICE, "fs", "read")
    both = Identity("alice", frozenset({"reader"}))
    assert policy.allows(both, "fs", "read") and policy.allows(both, "gh", "x")


def test_allows_server_follows_rules_and_empty_allow_filters() -> None:
    policy = ToolPolicy([PolicyRule(identities=["alice"], servers=["gh", "fs"])], {"fs": ToolFilter(allow=[])})
    assert policy.allows_server(ALICE, "gh")
    assert not policy.allows_server(ALICE, "fs")
    assert not policy.allows_server(ALICE, "db")
    assert not policy.allows_server(BOB, "gh")

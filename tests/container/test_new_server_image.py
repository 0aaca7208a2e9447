"""`make new-server` then `make container-<image>`: a generated server's image builds in the repo like every other
(same base, same pinned dependencies), and runs as a client's `docker run -i --rm` entry would: the SDK `Client`
lists and calls its tool over the container's stdin/stdout. The server is generated into a temp copy of the
repo (as in tests/e2e/test_new_server.py), never into this checkout."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import ROOT
from tests.container.conftest import LIMITS, PODMAN, podman
from tests.e2e.test_new_server import _copy_of_the_repo, _run

pytestmark = pytest.mark.anyio

TAG = "new-server-test"


async def test_a_generated_server_builds_into_an_image_that_lists_and_calls_over_stdio(tmp_path: Path) -> None:
    repo = _copy_of_the_repo(tmp_path / "repo")
    (repo / ".container").symlink_to(ROOT / ".container")  # the base image's tarball, made once per machine
    made = _run(["make", "new-server", "NAME=weather_server", "TITLE=Weather"], repo, 180)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    image = f"localhost/harbor-weather:{TAG}"
    try:
        built = _run(["make", "container-harbor-weather", f"IMAGE_TAG={TAG}"], repo, 600)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
        assert user and user not in ("0", "root"), user
        params = StdioServerParameters(
            command=PODMAN[0], args=[*PODMAN[1:], "run", "-i", "--rm", "--read-only", *LIMITS, image]
        )
        with anyio.fail_after(90):
            async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                result = await client.call_tool("summarize_numbers", {"values": [1, 2, 3, 4]})
    finally:
        podman("rmi", "-f", image, "localhost/harbor-weather:0.1.0", check=False)
    assert "summarize_numbers" in names
    assert not result.is_error and result.structured_content is not None, result.content
    assert result.structured_content["count"] == 4 and result.structured_content["mean"] == 2.5

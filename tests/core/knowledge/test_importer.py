from __future__ import annotations

import pytest

from core.knowledge.documents import get_document, get_fragments, list_documents
from core.knowledge.importer import Rejected, import_folder

GUIDE = "# Setup\n\nInstall the package with pip.\n\n## Running\n\nStart the server with make run."


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "guide.md").write_text(GUIDE)
    (tmp_path / "b.txt").write_text("Plain notes about the office plants.")
    (tmp_path / "data.json").write_text('{"plant": "fern", "water": "weekly"}')
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait")  # Latin-1, not UTF-8
    (tmp_path / "big.txt").write_text("x" * 2000)
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "Makefile").write_text("run:\n\techo hi")
    (tmp_path / ".hidden.md").write_text("not imported")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("not imported either")
    return tmp_path


async def test_a_folder_import_reports_added_and_rejected_with_reasons(make_runtime, run_worker, folder):
    runtime = await make_runtime({"KNOWLEDGE_MAX_DOCUMENT_BYTES": 1000})
    calls = []
    summary = await import_folder(runtime, folder, progress=lambda done, total: calls.append((done, total)))
    assert (summary.added, summary.unchanged, summary.replaced) == (3, 0, 0)
    assert sorted(summary.rejected, key=lambda r: r.path) == [
        Rejected("Makefile", "unsupported file type '(no suffix)'"),
        Rejected("bad.txt", "not UTF-8 text (byte 3)"),
        Rejected("big.txt", "too large: 2000 bytes; the limit is 1000 (KNOWLEDGE_MAX_DOCUMENT_BYTES)"),
        Rejected("empty.md", "empty document"),
        Rejected("scan.pdf", "unsupported file type '.pdf'"),
    ]
    assert calls == [(i, 8) for i in range(9)]  # hidden files and folders are not counted
    names = {d.metadata.model_extra["title"] for d in (await list_documents(runtime, limit=100)).memories}
    assert {"a/guide.md", "b.txt", "data.json"} <= names
    assert summary.queued == summary.fragments == 3
    assert len((await run_worker()).outcomes) == 3
    assert "rejected: 5" in summary.describe() and "  bad.txt: not UTF-8 text (byte 3)" in summary.describe()


async def test_importing_again_reports_unchanged_and_edited_files_replaced(make_runtime, run_worker, folder):
    runtime = await make_runtime({"KNOWLEDGE_MAX_DOCUMENT_BYTES": 1000})
    await import_folder(runtime, folder)
    await run_worker()
    (folder / "b.txt").write_text("Plain notes: the fern needs water on Mondays.")
    summary = await import_folder(runtime, folder)
    assert (summary.added, summary.unchanged, summary.replaced, len(summary.rejected)) == (0, 2, 1, 5)
    assert summary.queued == 1
    doc = next(
        d for d in (await list_documents(runtime, limit=100)).memories if d.metadata.model_extra["title"] == "b.txt"
    )
    stored = await get_document(runtime, doc.id)
    assert [f.text for f in await get_fragments(runtime, stored)] == ["Plain notes: the fern needs water on Mondays."]


async def test_shared_import_and_content_types(make_runtime, folder):
    runtime = await make_runtime({"KNOWLEDGE_MAX_DOCUMENT_BYTES": 1000})
    summary = await import_folder(runtime, folder, shared=True, name_prefix=f"test-{runtime.agent_id}/")
    try:
        assert summary.added == 3
        other = await make_runtime()
        shared = [
            d
            for d in (await list_documents(other, limit=1000)).memories
            if d.metadata.model_extra["title"].startswith(f"test-{runtime.agent_id}/")
        ]
        assert {d.metadata.model_extra["contentType"] for d in shared} == {
            "text/markdown",
            "text/plain",
            "application/json",
        }
    finally:
        for document in shared:
            await runtime.adapter.delete_knowledge_document([document.agent_id], document.id)


async def test_an_unreadable_file_is_rejected(make_runtime, tmp_path):
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "gone.txt")  # listed, but cannot be read
    summary = await import_folder(await make_runtime(), tmp_path)
    assert summary.rejected == [Rejected("dangling.txt", "cannot read: No such file or directory")]


async def test_a_missing_folder_is_an_error(make_runtime, tmp_path):
    with pytest.raises(NotADirectoryError):
        await import_folder(await make_runtime(), tmp_path / "nope")

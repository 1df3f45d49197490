"""The examples stay runnable."""

from __future__ import annotations

from pathlib import Path

from twisted.application.service import IServiceCollection, loadApplication

from twisted_mail_stack.service import MailStack

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_embedding_tac_builds_an_application_with_mailstack(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    application = loadApplication(str(EXAMPLES / "embedding.tac"), "python")
    services = list(IServiceCollection(application))
    assert any(isinstance(s, MailStack) for s in services)
    assert len(services) == 2  # the mail server beside the application's own web service

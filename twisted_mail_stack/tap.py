"""
C{twistd mailstack}: command-line options on top of the config file, then a L{MailStack}.

Options override the file; repeatable options replace the file's list for that key.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.python import usage

from .config import Config, load_config
from .errors import ConfigError
from .service import LISTENER_KINDS, MailStack, prepare_data_dir


def _listener_option(key: str, label: str) -> Any:
    """An C{opt_<key>} method for one listener kind, with its own help text."""
    assert key in {kind.key for kind in LISTENER_KINDS}

    def option(self: Options, endpoint: str) -> None:
        self._add(f"listeners.{key}", endpoint)

    option.__doc__ = f"Endpoint for {label} (repeatable; 'none' turns it off)."
    return option


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run the twisted-mail-stack mail server. With no options it keeps its data in "
        "./mailstack-data, listens on 127.0.0.1 at unprivileged ports (SMTP 2525, submission 2587 "
        "and 2465, POP3 2110 and 2995, IMAP 2143 and 2993), serves the domain 'localhost' and "
        "creates a demo user whose password it logs once. Listener options take Twisted endpoint "
        "strings (e.g. tcp:2525:interface=127.0.0.1) and may be repeated; giving one replaces that "
        "protocol's listeners from the config file, and 'none' turns the protocol off."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["data", "d", None, "Data directory (default ./mailstack-data)."],
        ["hostname", None, None, "Host name used in greetings and the generated certificate."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.repeated: dict[str, list[str]] = {}

    def _add(self, key: str, value: str) -> None:
        self.repeated.setdefault(key, []).append(value)

    def opt_domain(self, name: str) -> None:
        """A local domain (repeatable)."""
        self._add("domains", name)

    def opt_user(self, entry: str) -> None:
        """ADDRESS:PASSWORD of a user to create or update at start (repeatable; for quick starts)."""
        self._add("users", entry)

    opt_smtp = _listener_option("smtp", "SMTP for incoming mail (MX)")
    opt_submission = _listener_option("submission", "SMTP submission with STARTTLS")
    opt_submissions = _listener_option("submissions", "SMTP submission over implicit TLS")
    opt_pop3 = _listener_option("pop3", "POP3 with STLS")
    opt_pop3s = _listener_option("pop3s", "POP3 over implicit TLS")
    opt_imap = _listener_option("imap", "IMAP4 with STARTTLS")
    opt_imaps = _listener_option("imaps", "IMAP4 over implicit TLS")

    def postOptions(self) -> None:
        overrides: dict[str, Any] = {}
        for key, values in self.repeated.items():
            overrides[key] = [v for v in values if v != "none"]
        if self["data"]:
            overrides["data_dir"] = self["data"]
        if self["hostname"]:
            overrides["hostname"] = self["hostname"]
        try:
            self.config = load_config(self["config"], overrides)
            prepare_data_dir(self.config)
        except ConfigError as e:
            raise usage.UsageError(f"configuration error: {e}") from None


def makeService(options: Options) -> IService:
    config: Config = options.config
    return MailStack(config)

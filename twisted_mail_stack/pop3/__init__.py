"""POP3 (RFC 1939) over the mailbox contract: L{server.POP3Factory} and the service builders."""

"""
Accounts and authentication for every protocol, through twisted.cred.

L{UserDB} (the password file) says who exists; L{Directory} says where mail to an address
goes; L{build_portal} gives the portal the protocols log in through; L{sasl} decodes the
password mechanisms and L{policy} says when cleartext passwords are allowed.
"""

from .aliases import AliasFile
from .checker import PasswordChecker
from .directory import Directory
from .passwords import hash_password, verify_password
from .policy import PlaintextPolicy, plaintext_allowed
from .realm import MailRealm, build_portal
from .userdb import UserDB, canonical_user

__all__ = [
    "AliasFile",
    "Directory",
    "MailRealm",
    "PasswordChecker",
    "PlaintextPolicy",
    "UserDB",
    "build_portal",
    "canonical_user",
    "hash_password",
    "plaintext_allowed",
    "verify_password",
]

"""The server's errors: one hierarchy, each message written for the caller to act on.

    SqlServerError (ValueError)
    ├── InvalidArguments      arguments that cannot be used (params, limit, names): says what to fix
    ├── SqlSyntaxError        the parser could not read the statement: line, column and token
    ├── RejectedStatement     layer 1 refused a construct; the message names it
    ├── WriteRefused          execute_write refused (disabled, no WHERE, DDL, declined, count changed)
    ├── NotFound              an unknown table or schema; suggests the closest names
    ├── DatabaseError         the database refused the statement: its own message, sanitized
    │   └── LimitExceeded     a configured limit stopped the statement; names the limit
    ├── DatabaseUnavailable   no connection: never carries host, port, user, password or DSN
    └── StartupRefused        the configuration is refused at start (superuser role, bad DSN)

Messages never contain a DSN, a password, a host or a stack trace: the backends log those details to
stderr and raise these errors with what the caller needs. `server.py` turns every one of them into a tool
error carrying exactly this message.
"""

from __future__ import annotations


class SqlServerError(ValueError):
    """Base class: an anticipated failure whose message is safe to show to the caller."""


class InvalidArguments(SqlServerError):
    """The arguments cannot be used as given."""


class SqlSyntaxError(SqlServerError):
    """The statement does not parse; the message says where, in the caller's own SQL."""


class RejectedStatement(SqlServerError):
    """Layer 1 (the AST allow-list) refused the statement."""


class WriteRefused(SqlServerError):
    """execute_write will not run this statement (or did not, and rolled back)."""


class NotFound(SqlServerError):
    """A table or schema that does not exist (or that this role cannot see)."""


class DatabaseError(SqlServerError):
    """The database refused the statement; the message is the database's own, without connection details."""


class LimitExceeded(DatabaseError):
    """A configured limit (statement timeout, value size) stopped the statement."""


class DatabaseUnavailable(SqlServerError):
    """The database cannot be reached or refused the connection."""


class StartupRefused(SqlServerError):
    """The server refuses to start with this configuration."""

-- The least-privilege role sql_server logs in as (SQL_SERVER_DSN=postgresql://harbor_reader:…@host/shop).
-- Run as a superuser, connected to the database the server reads (here: shop). The test suite runs this
-- file verbatim against its throw-away cluster and then runs every PostgreSQL test as this role.

CREATE ROLE harbor_reader LOGIN PASSWORD 'change-me'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT 20;

-- Every session of the role is read-only and time-limited before the server sets anything itself.
ALTER ROLE harbor_reader SET default_transaction_read_only = on;
ALTER ROLE harbor_reader SET statement_timeout = '30s';
ALTER ROLE harbor_reader SET idle_in_transaction_session_timeout = '60s';

-- Connect, nothing else: no TEMPORARY (no temp tables), no CREATE on the database or its schemas.
REVOKE ALL ON DATABASE shop FROM PUBLIC;
GRANT CONNECT ON DATABASE shop TO harbor_reader;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO harbor_reader;

-- Read the tables, today's and tomorrow's.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO harbor_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO harbor_reader;

-- Functions every role may call by default that a reader must not: signalling its own sessions, and
-- telling the server's address (errors and results never name the host).
-- (pg_read_file, pg_ls_dir, COPY TO/FROM a file or PROGRAM, lo_import/lo_export, pg_reload_conf and the
-- replication-slot functions are already refused to a role that is not a superuser, not REPLICATION and not
-- a member of pg_read_server_files, pg_write_server_files or pg_execute_server_program; the server refuses
-- to start as such a role.)
REVOKE EXECUTE ON FUNCTION pg_terminate_backend(integer, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_cancel_backend(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION inet_server_addr(), inet_server_port() FROM PUBLIC;
-- … and writing messages into the write-ahead log (a READ ONLY transaction refuses the transactional form only).
REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, bytea) FROM PUBLIC;

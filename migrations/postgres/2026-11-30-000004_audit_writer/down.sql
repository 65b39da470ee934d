DROP POLICY audit_writer_append ON audit_log;

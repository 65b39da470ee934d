DROP TABLE audit_log;
DROP TABLE memberships;
DROP TABLE users;

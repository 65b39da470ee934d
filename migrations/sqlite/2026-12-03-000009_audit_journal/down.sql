DROP TABLE audit_journal_applied;

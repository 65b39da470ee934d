DROP TABLE version_stages;
DROP TABLE secret_versions;
DROP TABLE secrets;
DROP TABLE access_keys;
DROP TABLE workspaces;
DROP TABLE vault_meta;

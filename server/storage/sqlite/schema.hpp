#pragma once

struct sqlite3;

namespace adms::server::sqlite {

// Brings the database from schema version `from_version` to sqlite_storage::schema_version,
// applying each missing migration in its own transaction; throws sqlite_failure.
void migrate(sqlite3* db, int from_version);

} // namespace adms::server::sqlite

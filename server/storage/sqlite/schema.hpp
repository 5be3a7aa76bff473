#pragma once

namespace adms::server::sqlite {

class connection;

// Brings the database from schema version `from_version` to sqlite_database::schema_version,
// applying each missing migration in its own transaction; throws sqlite_failure.
void migrate(connection& db, int from_version);

} // namespace adms::server::sqlite

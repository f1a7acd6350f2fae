//! A migration that creates an extension the server does not have gets a message naming the
//! Debian package that installs it (Supabase projects often use postgis, vector, pg_trgm...).

/// The extension named by a "not available" error, if the error is one.
pub(crate) fn missing_extension(message: &str) -> Option<String> {
    // Postgres 15: could not open extension control file ".../postgis.control": No such file...
    if let Some(rest) = message.strip_prefix("could not open extension control file \"") {
        let path = rest.split('"').next()?;
        let file = path.rsplit('/').next()?;
        return file.strip_suffix(".control").map(str::to_owned);
    }
    // Postgres 16 and later: extension "postgis" is not available
    let rest = message.strip_prefix("extension \"")?;
    let (name, tail) = rest.split_once('"')?;
    tail.contains("not available").then(|| name.to_owned())
}

/// The Debian package that installs `extension` for Postgres `major`, and whether it is part of
/// the server's own contrib modules.
pub(crate) fn debian_package(extension: &str, major: u32) -> String {
    let contrib = [
        "pgcrypto",
        "pg_trgm",
        "uuid-ossp",
        "citext",
        "hstore",
        "ltree",
        "btree_gin",
        "btree_gist",
        "cube",
        "earthdistance",
        "fuzzystrmatch",
        "intarray",
        "isn",
        "pg_stat_statements",
        "pgrowlocks",
        "tablefunc",
        "unaccent",
        "dblink",
        "postgres_fdw",
        "seg",
        "tcn",
        "moddatetime",
        "autoinc",
        "insert_username",
        "refint",
        "lo",
        "pg_buffercache",
        "pg_prewarm",
        "amcheck",
        "pgstattuple",
        "bloom",
        "tsm_system_rows",
        "tsm_system_time",
        "xml2",
        "sslinfo",
        "file_fdw",
    ];
    if contrib.contains(&extension) {
        return format!("postgresql-{major} (a contrib module shipped with the server; postgresql-contrib on older releases)");
    }
    let package = match extension {
        "postgis"
        | "postgis_topology"
        | "postgis_raster"
        | "postgis_tiger_geocoder"
        | "address_standardizer" => format!("postgresql-{major}-postgis-3"),
        "vector" => format!("postgresql-{major}-pgvector"),
        "pg_cron" => format!("postgresql-{major}-cron"),
        "pgrouting" => format!("postgresql-{major}-pgrouting"),
        "http" => format!("postgresql-{major}-http"),
        "pgtap" => format!("postgresql-{major}-pgtap"),
        "pgaudit" => format!("postgresql-{major}-pgaudit"),
        "pg_partman" => format!("postgresql-{major}-partman"),
        "pg_repack" => format!("postgresql-{major}-repack"),
        "hypopg" => format!("postgresql-{major}-hypopg"),
        "rum" => format!("postgresql-{major}-rum"),
        "plpgsql_check" => format!("postgresql-{major}-plpgsql-check"),
        "plv8" => format!("postgresql-{major}-plv8"),
        "pg_hashids" => format!("postgresql-{major}-pg-hashids"),
        "orafce" => format!("postgresql-{major}-orafce"),
        "timescaledb" => {
            "timescaledb-2-postgresql (from Timescale's own apt repository)".to_owned()
        }
        _ => {
            return format!(
                "no known Debian package: look for it with `apt-cache search postgresql-{major}` \
                 or build it from source"
            )
        }
    };
    package
}

/// The hint shown after a migration fails for a missing extension.
pub(crate) fn hint(extension: &str, major: u32) -> String {
    let package = debian_package(extension, major);
    if package.starts_with("no known") {
        format!("the extension {extension:?} is not installed on the database server ({package})")
    } else {
        format!(
            "the extension {extension:?} is not installed on the database server; on Debian or \
             Ubuntu install the package {package} there (apt-get install {}) and run again",
            package.split(' ').next().unwrap_or(&package)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_extensions_are_recognised_in_both_wordings() {
        assert_eq!(
            missing_extension(
                "could not open extension control file \
                 \"/usr/share/postgresql/15/extension/postgis.control\": No such file or directory"
            ),
            Some("postgis".to_owned())
        );
        assert_eq!(
            missing_extension("extension \"vector\" is not available"),
            Some("vector".to_owned())
        );
        assert_eq!(missing_extension("relation \"x\" does not exist"), None);
    }

    #[test]
    fn packages_are_named_for_the_server_version() {
        assert_eq!(debian_package("postgis", 15), "postgresql-15-postgis-3");
        assert_eq!(debian_package("vector", 16), "postgresql-16-pgvector");
        assert!(debian_package("pg_trgm", 15).starts_with("postgresql-15 "));
        assert!(hint("postgis", 15).contains("apt-get install postgresql-15-postgis-3"));
        assert!(hint("made_up", 15).contains("no known Debian package"));
    }
}

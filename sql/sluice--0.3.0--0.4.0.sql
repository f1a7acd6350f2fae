-- Sluice 0.3.0 -> 0.4.0. Each section below names the change it carries; the definitions are the same
-- as the extension's source (extension/sql/*.sql and the Rust functions); checked by
-- scripts/check-upgrade.sh.
\echo Use "ALTER EXTENSION sluice UPDATE TO '0.4.0'" to load this file. \quit

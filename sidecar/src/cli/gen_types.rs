//! `sluice gen types typescript`: the `Database` type supabase-js is parameterised with, the same
//! text the Supabase CLI prints (`supabase gen types typescript`, postgres-meta's generator with
//! one-to-one detection and the PostgREST version), formatting included, so a project can switch
//! generators without a diff. `catalog` (with `relationships`) reads the schemas, `emit` decides
//! what each object becomes as a TypeScript type (`ts`), and `doc` lays it out as the generator's
//! formatter does.

mod catalog;
mod collate;
mod doc;
mod emit;
mod relationships;
mod ts;

use clap::{Args, Subcommand, ValueEnum};

use self::catalog::Catalog;
use self::doc::{group, text};
use self::emit::Generator;
use self::ts::{bracketed, key, layout_member, member, quote, value_object};
use super::{block_on, connect, parse_url, CliError};

#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(subcommand)]
    pub command: GenCommand,
}

#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Print the types of the database's schemas for a client library.
    Types(TypesArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Language {
    /// The `Database` type of supabase-js (`createClient<Database>(...)`).
    Typescript,
}

#[derive(Debug, Args)]
pub struct TypesArgs {
    /// The language to generate.
    pub language: Language,

    /// Postgres URL of a superuser or of the database's owner.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub db_url: String,

    /// The schemas to generate, comma separated (a schema that does not exist is left out).
    #[arg(long, value_delimiter = ',', default_value = "public")]
    pub schema: Vec<String>,

    /// The PostgREST version written into `__InternalSupabase`, which supabase-js reads to pick
    /// its features (Sluice answers as PostgREST 12 does); `none` leaves it out, as the Supabase
    /// CLI's `--postgrest-v9-compat` does.
    #[arg(long, default_value = "12")]
    pub postgrest_version: String,
}

pub fn run(args: GenArgs) -> Result<(), CliError> {
    let GenCommand::Types(args) = args.command;
    let schemas: Vec<String> = args
        .schema
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if schemas.is_empty() {
        return Err(CliError::Input("--schema names no schema".into()));
    }
    let version = match args.postgrest_version.as_str() {
        "none" => None,
        v if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.') => Some(v),
        _ => {
            return Err(CliError::Input(
                "--postgrest-version is a version such as 12 or 12.2.3, or none".into(),
            ))
        }
    };
    let config = parse_url(&args.db_url)?;
    let catalog = block_on(async {
        let client = connect(&config).await?;
        catalog::read(&client, &schemas).await
    })?;
    print!("{}", typescript(&catalog, version));
    Ok(())
}

fn typescript(catalog: &Catalog, postgrest_version: Option<&str>) -> String {
    let generator = Generator::new(catalog);
    let mut out = String::from(HEADER);
    out.push_str("export type Database = {\n");
    if let Some(version) = postgrest_version {
        out.push_str("  // Allows to automatically instantiate createClient with right options\n");
        out.push_str(
            "  // instead of createClient<Database, { PostgrestVersion: 'XX' }>(URL, KEY)\n",
        );
        out.push_str("  __InternalSupabase: {\n");
        out.push_str(&format!("    PostgrestVersion: {}\n  }}\n", quote(version)));
    }
    for schema in &catalog.schemas {
        let member = layout_member(&member(schema, false, generator.schema_type(schema)));
        out.push_str("  ");
        out.push_str(&doc::print(&member, 80, 2));
        out.push('\n');
    }
    out.push_str("}\n\n");
    out.push_str("type DatabaseWithoutInternals = Omit<Database, \"__InternalSupabase\">\n\n");
    out.push_str(
        "type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, \"public\">]\n\n",
    );
    out.push_str(HELPERS);
    out.push_str("export const Constants = {\n");
    for schema in &catalog.schemas {
        let enums = generator
            .enums(schema)
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    bracketed(e.enums.iter().map(|v| text(quote(v))).collect()),
                )
            })
            .collect();
        let constants = value_object(vec![("Enums".to_string(), value_object(enums))]);
        let member = group(vec![text(format!("{}: ", key(schema))), constants], false);
        out.push_str("  ");
        out.push_str(&doc::print(&member, 80, 2));
        out.push_str(",\n");
    }
    out.push_str("} as const\n\n");
    out
}

const HEADER: &str = "export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

";

/// The helper types after `Database`, as the generator prints them for the default schema
/// `public`.
const HELPERS: &str = include_str!("gen_types/helpers.ts");

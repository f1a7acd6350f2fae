//! The `Accept` header: which of our response formats the client wants.
//!
//! Media ranges are ordered by `q` (highest first; `q=0` means "not this one") and, at equal `q`,
//! by specificity (`text/csv` before `text/*` before `*/*`), as wai's `parseHttpAccept` orders
//! them for PostgREST; the first one we can produce wins. No header, or an empty one, is JSON.

use axum::http::HeaderMap;

use super::error::ParseError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`, `application/*`, `*/*`: a JSON array.
    #[default]
    Json,
    /// `text/csv`.
    Csv,
    /// `application/vnd.pgrst.object+json`: exactly one row as a JSON object (supabase-js
    /// `.single()`); the responder answers 406 when the result is not one row.
    SingleObject,
    /// `application/geo+json`: the rows as a GeoJSON FeatureCollection (PostGIS's
    /// `ST_AsGeoJSON` of each row: its geometry column and the others as properties).
    GeoJson,
    /// `application/openapi+json`: only the root (`/rest/v1/`) offers it.
    OpenApi,
}

/// What the response makes of the body, besides its format: PostgREST's vendor parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    /// `application/vnd.pgrst.array+json;nulls=stripped` or `…object+json;nulls=stripped`: keys
    /// whose value is null are left out (`json_strip_nulls`).
    pub strip_nulls: bool,
    /// `application/vnd.pgrst.plan[+text|+json]; for="…"; options=…`: the statement's plan, not
    /// its result (answered only when the server allows it, as PostgREST's `db-plan-enabled`).
    pub explain: Option<Explain>,
}

/// The `EXPLAIN` a plan media type asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Explain {
    /// `+json` (else text).
    pub json: bool,
    pub analyze: bool,
    pub verbose: bool,
    pub settings: bool,
    pub buffers: bool,
    pub wal: bool,
}

impl Explain {
    /// The options as PostgREST names them in `options=`, in its order.
    pub fn options(&self) -> Vec<&'static str> {
        [
            (self.analyze, "analyze"),
            (self.verbose, "verbose"),
            (self.settings, "settings"),
            (self.buffers, "buffers"),
            (self.wal, "wal"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// `application/vnd.pgrst.plan+text; for="application/json"; options=analyze|verbose`, as
    /// PostgREST writes the media type (its `Content-Type`, before the charset).
    pub fn mime(&self, target: MediaType) -> String {
        let format = if self.json { "json" } else { "text" };
        let mut mime = format!(
            "application/vnd.pgrst.plan+{format}; for=\"{}\"",
            target.mime()
        );
        let options = self.options();
        if !options.is_empty() {
            mime.push_str("; options=");
            mime.push_str(&options.join("|"));
        }
        mime
    }
}

impl MediaType {
    /// The media type's name, as `Content-Type` gives it (without the charset).
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::Csv => "text/csv",
            MediaType::SingleObject => "application/vnd.pgrst.object+json",
            MediaType::GeoJson => "application/geo+json",
            MediaType::OpenApi => "application/openapi+json",
        }
    }
}

/// The format asked for; the OpenAPI media type only `at_root` (`/rest/v1/`), as PostgREST
/// produces it nowhere else. Without `plans` (PostgREST's `db-plan-enabled` off) a plan media
/// type is passed over like any we cannot produce, so that a later one in `Accept` (or `*/*`)
/// is answered instead, as PostgREST's `negotiateContent` does; 406 only when none is left.
pub(crate) fn parse_accept(
    headers: &HeaderMap,
    at_root: bool,
    plans: bool,
) -> Result<(MediaType, Output), ParseError> {
    let mut ranges = Vec::new();
    for value in headers.get_all("accept") {
        let text = value.to_str().map_err(|_| ParseError::InvalidHeader {
            header: "Accept",
            problem: "not visible ASCII text".to_owned(),
        })?;
        ranges.extend(text.split(',').filter_map(MediaRange::parse));
    }
    if ranges.is_empty() {
        return Ok((MediaType::Json, Output::default()));
    }
    // Stable, so equal ranges keep the client's order.
    ranges.sort_by(|a, b| {
        b.quality
            .total_cmp(&a.quality)
            .then(b.specificity.cmp(&a.specificity))
    });
    let chosen = ranges
        .iter()
        .filter(|range| range.quality > 0.0)
        .filter_map(MediaRange::supported)
        .filter(|(_, output)| plans || output.explain.is_none())
        .find(|(media, _)| at_root || *media != MediaType::OpenApi);
    chosen.ok_or_else(|| ParseError::NotAcceptable {
        requested: ranges.iter().map(MediaRange::mime).collect(),
    })
}

struct MediaRange {
    /// `type/subtype`, lower case, without parameters.
    essence: String,
    /// The parameters other than `q`, trimmed, as given (`for="text/csv"`, `nulls=stripped`).
    params: Vec<String>,
    quality: f32,
    /// 0 for `*/*`, 1 for `type/*`, 2 for `type/subtype`, 3 with parameters other than `q`.
    specificity: u8,
}

impl MediaRange {
    fn parse(item: &str) -> Option<MediaRange> {
        let mut parts = item.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() {
            return None;
        }
        let mut quality = 1.0;
        let mut params = Vec::new();
        for param in parts {
            match param.trim().split_once('=') {
                // An unreadable weight counts as 1, as in wai.
                Some((name, value)) if name.trim().eq_ignore_ascii_case("q") => {
                    quality = value
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .map_or(1.0, |q| q.clamp(0.0, 1.0));
                }
                _ if param.trim().is_empty() => {}
                _ => params.push(param.trim().to_owned()),
            }
        }
        let specificity = match essence.as_str() {
            "*/*" => 0,
            e if e.ends_with("/*") => 1,
            _ if !params.is_empty() => 3,
            _ => 2,
        };
        Some(MediaRange {
            essence,
            params,
            quality,
            specificity,
        })
    }
}

impl MediaRange {
    /// The range as PostgREST's `toMime` names it in PGRST107: a plan type with its target and
    /// options, a vendor type with `nulls=stripped`, else the type without parameters.
    fn mime(&self) -> String {
        match self.supported() {
            Some((
                media,
                Output {
                    explain: Some(explain),
                    ..
                },
            )) => explain.mime(media),
            Some((
                _,
                Output {
                    strip_nulls: true, ..
                },
            )) => format!("{};nulls=stripped", self.essence),
            _ => self.essence.clone(),
        }
    }

    /// The format and output this range asks for, if we produce it: PostgREST's
    /// `decodeMediaType`, where `nulls=stripped` must be the only parameter.
    fn supported(&self) -> Option<(MediaType, Output)> {
        let stripped = self.params.len() == 1 && self.params[0] == "nulls=stripped";
        let plain = |media| Some((media, Output::default()));
        match self.essence.as_str() {
            "*/*" | "application/*" | "application/json" => plain(MediaType::Json),
            "application/vnd.pgrst.array+json" | "application/vnd.pgrst.array" => Some((
                MediaType::Json,
                Output {
                    strip_nulls: stripped,
                    explain: None,
                },
            )),
            "text/csv" => plain(MediaType::Csv),
            "application/vnd.pgrst.object+json" | "application/vnd.pgrst.object" => Some((
                MediaType::SingleObject,
                Output {
                    strip_nulls: stripped,
                    explain: None,
                },
            )),
            "application/geo+json" => plain(MediaType::GeoJson),
            "application/openapi+json" => plain(MediaType::OpenApi),
            "application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text" => self.plan(false),
            "application/vnd.pgrst.plan+json" => self.plan(true),
            _ => None,
        }
    }

    /// `for="<media type>"` (JSON when absent) and `options=a|b`, as PostgREST reads them; a
    /// `for` we cannot produce is refused like any other media type.
    fn plan(&self, json: bool) -> Option<(MediaType, Output)> {
        let param = |name: &str| {
            self.params.iter().find_map(|p| {
                let (key, value) = p.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"'))
            })
        };
        let target = match param("for") {
            None => MediaType::Json,
            Some(inner) => {
                let inner = MediaRange::parse(inner)?;
                match inner.supported()? {
                    (MediaType::OpenApi, _) => return None,
                    (
                        _,
                        Output {
                            explain: Some(_), ..
                        },
                    ) => return None,
                    (media, _) => media,
                }
            }
        };
        let options: Vec<&str> = param("options").map_or(Vec::new(), |o| o.split('|').collect());
        let has = |name: &str| options.contains(&name);
        let explain = Explain {
            json,
            analyze: has("analyze"),
            verbose: has("verbose"),
            settings: has("settings"),
            buffers: has("buffers"),
            wal: has("wal"),
        };
        Some((
            target,
            Output {
                strip_nulls: false,
                explain: Some(explain),
            },
        ))
    }
}

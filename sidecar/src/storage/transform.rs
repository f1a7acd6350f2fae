//! Image transformations (`/render/image/...`): resize to `width`/`height` with Supabase's
//! `resize` modes (cover: fill the box and crop; contain: fit inside it; fill: stretch), and
//! encode as the original format or WebP, with `quality` for JPEG and WebP. Pure functions over
//! bytes; `http::storage::render` fetches the source and caches the result.
//!
//! WebP output is lossy, encoded by libwebp (the `webp` crate; the `image` crate encodes lossless
//! WebP only), at `quality` (default 80, as Supabase's). Sources are bounded (`MAX_SOURCE_BYTES`, and the decoder's own size limits), as are the
//! requested dimensions (`MAX_DIMENSION`, Supabase's).

use std::collections::HashMap;
use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};

use super::StorageError;

/// The largest source image transformed (Supabase: 25 MB).
pub const MAX_SOURCE_BYTES: u64 = 25 * 1024 * 1024;
/// The largest width or height asked for.
pub const MAX_DIMENSION: u32 = 2500;
const DEFAULT_QUALITY: u8 = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    #[default]
    Cover,
    Contain,
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Origin,
    Webp,
}

/// What storage-js's `TransformOptions` ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default)]
    pub resize: Resize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    #[serde(default)]
    pub format: Format,
}

fn invalid(message: &str) -> StorageError {
    StorageError::InvalidRequest(message.to_owned())
}

impl Transform {
    /// From the query string (`width`, `height`, `resize`, `quality`, `format`).
    pub fn from_query(query: &HashMap<String, String>) -> Result<Transform, StorageError> {
        let dimension = |name: &str| -> Result<Option<u32>, StorageError> {
            match query.get(name) {
                None => Ok(None),
                Some(text) => match text.parse::<u32>() {
                    Ok(value) if (1..=MAX_DIMENSION).contains(&value) => Ok(Some(value)),
                    _ => Err(invalid(&format!(
                        "{name} must be an integer from 1 to {MAX_DIMENSION}"
                    ))),
                },
            }
        };
        let transform = Transform {
            width: dimension("width")?,
            height: dimension("height")?,
            resize: match query.get("resize").map(String::as_str) {
                None | Some("cover") => Resize::Cover,
                Some("contain") => Resize::Contain,
                Some("fill") => Resize::Fill,
                Some(_) => return Err(invalid("resize must be cover, contain or fill")),
            },
            quality: match query.get("quality") {
                None => None,
                Some(text) => match text.parse::<u8>() {
                    Ok(value) if (20..=100).contains(&value) => Some(value),
                    _ => return Err(invalid("quality must be an integer from 20 to 100")),
                },
            },
            format: match query.get("format").map(String::as_str) {
                None | Some("origin") => Format::Origin,
                Some("webp") => Format::Webp,
                Some(_) => return Err(invalid("format must be origin or webp")),
            },
        };
        transform.check()
    }

    /// Bounds, for options that came from a signed token as well.
    pub fn check(self) -> Result<Transform, StorageError> {
        for value in [self.width, self.height].into_iter().flatten() {
            if !(1..=MAX_DIMENSION).contains(&value) {
                return Err(invalid(&format!(
                    "dimensions must be from 1 to {MAX_DIMENSION}"
                )));
            }
        }
        Ok(self)
    }

    /// A name for the cache: the same options, the same name.
    pub fn cache_name(&self, extension: &str) -> String {
        let dim = |value: Option<u32>| value.map_or("auto".to_owned(), |v| v.to_string());
        format!(
            "w{}-h{}-{:?}-q{}-{:?}.{extension}",
            dim(self.width),
            dim(self.height),
            self.resize,
            self.quality.unwrap_or(DEFAULT_QUALITY),
            self.format
        )
        .to_ascii_lowercase()
    }

    /// The output's file extension and content type, given the source's content type; `None`
    /// when the source is not an image we transform.
    pub fn output(&self, source_type: &str) -> Option<(&'static str, &'static str)> {
        if self.format == Format::Webp {
            return Some(("webp", "image/webp"));
        }
        match source_type.split(';').next().unwrap_or("").trim() {
            "image/png" => Some(("png", "image/png")),
            "image/jpeg" | "image/jpg" => Some(("jpeg", "image/jpeg")),
            "image/webp" => Some(("webp", "image/webp")),
            _ => None,
        }
    }
}

/// The transformed image: its bytes and content type.
pub fn apply(
    source: &[u8],
    transform: &Transform,
) -> Result<(Vec<u8>, &'static str), StorageError> {
    let unsupported = || invalid("the object is not a PNG, JPEG or WebP image");
    let format = image::guess_format(source).map_err(|_| unsupported())?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
        return Err(unsupported());
    }
    let mut reader = ImageReader::with_format(Cursor::new(source), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|err| invalid(&format!("the image could not be decoded: {err}")))?;
    let resized = resize(image, transform);
    let mut out = Vec::new();
    let quality = transform.quality.unwrap_or(DEFAULT_QUALITY);
    let (output, content_type) = match transform.format {
        Format::Webp => (ImageFormat::WebP, "image/webp"),
        Format::Origin => (
            format,
            match format {
                ImageFormat::Png => "image/png",
                ImageFormat::Jpeg => "image/jpeg",
                _ => "image/webp",
            },
        ),
    };
    let encoded = match output {
        ImageFormat::Png => resized.write_with_encoder(PngEncoder::new(&mut out)),
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(resized.to_rgb8())
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, quality)),
        _ => {
            let rgba = resized.to_rgba8();
            let encoded = webp::Encoder::from_rgba(rgba.as_raw(), rgba.width(), rgba.height())
                .encode_simple(false, f32::from(quality))
                .map_err(|err| {
                    StorageError::Internal(format!("encoding the image as WebP failed: {err:?}"))
                })?;
            out = encoded.to_vec();
            Ok(())
        }
    };
    encoded.map_err(|err| StorageError::Internal(format!("encoding the image failed: {err}")))?;
    Ok((out, content_type))
}

fn resize(image: DynamicImage, transform: &Transform) -> DynamicImage {
    let (source_width, source_height) = (image.width().max(1), image.height().max(1));
    let filter = FilterType::Triangle;
    match (transform.width, transform.height) {
        (None, None) => image,
        // One side given: the other follows the aspect ratio.
        (Some(width), None) => {
            let height =
                (u64::from(width) * u64::from(source_height) / u64::from(source_width)).max(1);
            image.resize_exact(width, height as u32, filter)
        }
        (None, Some(height)) => {
            let width =
                (u64::from(height) * u64::from(source_width) / u64::from(source_height)).max(1);
            image.resize_exact(width as u32, height, filter)
        }
        (Some(width), Some(height)) => match transform.resize {
            Resize::Cover => image.resize_to_fill(width, height, filter),
            Resize::Contain => image.resize(width, height, filter),
            Resize::Fill => image.resize_exact(width, height, filter),
        },
    }
}

/// The first key part of cached renderings: not a valid bucket id, so never an object's key. No
/// row names these keys, so the sweep removes them once they are older than its grace period:
/// that is the cache's lifetime. A new version of the object has another key, so a cached
/// rendering is never stale.
pub const CACHE_PREFIX: &str = "render~cache";

impl super::Storage {
    /// The object rendered with `transform`: from the cache, or made (off the async threads) and
    /// cached.
    pub async fn render(
        &self,
        bucket: &str,
        name: &str,
        head: &super::ObjectHead,
        transform: &Transform,
    ) -> Result<(super::ByteStream, &'static str), StorageError> {
        use futures_util::StreamExt;

        let source_type = head.field("mimetype").unwrap_or("");
        let (extension, content_type) = transform
            .output(source_type)
            .ok_or_else(|| invalid("the object is not a PNG, JPEG or WebP image"))?;
        if head.size() > MAX_SOURCE_BYTES {
            return Err(StorageError::EntityTooLarge);
        }
        let rendition = transform.cache_name(extension);
        let mut cache_key = vec![CACHE_PREFIX, bucket];
        cache_key.extend(name.split('/'));
        cache_key.push(&head.version);
        cache_key.push(&rendition);
        if let Ok(cached) = self.backend.get(&cache_key, None).await {
            return Ok((cached, content_type));
        }
        let mut source = Vec::with_capacity(head.size() as usize);
        let mut stream = self.open(bucket, name, head, None).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| StorageError::Internal(err.to_string()))?;
            if (source.len() + chunk.len()) as u64 > MAX_SOURCE_BYTES {
                return Err(StorageError::EntityTooLarge);
            }
            source.extend_from_slice(&chunk);
        }
        let options = transform.clone();
        let (out, made_type) = tokio::task::spawn_blocking(move || apply(&source, &options))
            .await
            .map_err(|err| StorageError::Internal(err.to_string()))??;
        let bytes = bytes::Bytes::from(out);
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes.clone())]);
        if let Err(err) = self.backend.put(&cache_key, body, u64::MAX).await {
            tracing::warn!("could not cache a rendering of {bucket}/{name}: {err}");
        }
        let stream = futures_util::stream::iter([Ok(bytes)]).boxed();
        Ok((stream, made_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, RgbImage};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_with_encoder(PngEncoder::new(&mut out))
            .unwrap();
        out
    }

    fn size_of(bytes: &[u8]) -> (u32, u32) {
        image::load_from_memory(bytes).unwrap().dimensions()
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resize_modes_give_the_sizes_supabase_does() {
        let source = png(200, 100);
        let cases = [
            (&[("width", "50"), ("height", "50")][..], (50, 50)),
            (
                &[("width", "50"), ("height", "50"), ("resize", "contain")][..],
                (50, 25),
            ),
            (
                &[("width", "50"), ("height", "50"), ("resize", "fill")][..],
                (50, 50),
            ),
            (&[("width", "100")][..], (100, 50)),
            (&[("height", "20")][..], (40, 20)),
        ];
        for (pairs, expected) in cases {
            let transform = Transform::from_query(&query(pairs)).unwrap();
            let (out, content_type) = apply(&source, &transform).unwrap();
            assert_eq!(content_type, "image/png");
            assert_eq!(size_of(&out), expected, "{pairs:?}");
        }
        let webp = Transform::from_query(&query(&[("width", "20"), ("format", "webp")])).unwrap();
        let (out, content_type) = apply(&source, &webp).unwrap();
        assert_eq!(content_type, "image/webp");
        assert_eq!(&out[8..12], b"WEBP");
        assert_eq!(size_of(&out), (20, 10));
    }

    /// A photo-like source (smooth gradients and noise), where lossy quality makes a difference.
    fn photo(width: u32, height: u32) -> Vec<u8> {
        let mut seed = 7u32;
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = (seed >> 24) as u8 / 4;
            image::Rgb([
                (x * 255 / width) as u8 ^ noise,
                (y * 255 / height) as u8,
                ((x + y) % 256) as u8 ^ noise,
            ])
        });
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_with_encoder(PngEncoder::new(&mut out))
            .unwrap();
        out
    }

    #[test]
    fn webp_is_lossy_and_quality_changes_its_size() {
        let source = photo(400, 300);
        let mut sizes = Vec::new();
        for quality in ["20", "50", "90"] {
            let transform = Transform::from_query(&query(&[
                ("width", "200"),
                ("height", "150"),
                ("format", "webp"),
                ("quality", quality),
            ]))
            .unwrap();
            let (out, content_type) = apply(&source, &transform).unwrap();
            assert_eq!(content_type, "image/webp");
            assert_eq!(&out[..4], b"RIFF");
            assert_eq!(&out[8..12], b"WEBP");
            // Lossy WebP is a `VP8 ` chunk (lossless would be `VP8L`).
            assert_eq!(&out[12..16], b"VP8 ", "quality {quality}");
            assert_eq!(
                image::guess_format(&out).unwrap(),
                ImageFormat::WebP,
                "quality {quality}"
            );
            assert_eq!(size_of(&out), (200, 150), "quality {quality}");
            sizes.push(out.len());
        }
        eprintln!("200x150 WebP at quality 20, 50, 90: {sizes:?} bytes");
        assert!(
            sizes[0] < sizes[1] && sizes[1] < sizes[2],
            "WebP sizes at quality 20, 50, 90: {sizes:?}"
        );
    }

    #[test]
    fn bad_options_and_non_images_are_refused() {
        for pairs in [
            &[("width", "0")][..],
            &[("width", "3000")][..],
            &[("resize", "stretch")][..],
            &[("quality", "5")][..],
            &[("format", "gif")][..],
        ] {
            assert!(Transform::from_query(&query(pairs)).is_err(), "{pairs:?}");
        }
        assert!(apply(b"not an image", &Transform::default()).is_err());
    }
}

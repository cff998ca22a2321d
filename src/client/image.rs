//! Writing an image to a file: raw pixels as TIFF, or an auto-contrast PNG to look at.

use std::path::Path;

use anyhow::{bail, Context};
use microscoped_driver_api::PixelType;

use super::Image;

/// The pixels of an image as 16-bit values (8-bit images widened), row-major.
pub fn pixels_u16(img: &Image) -> anyhow::Result<Vec<u16>> {
    let n = img.width as usize * img.height as usize;
    match img.pixel_type {
        Some(PixelType::U16) if img.data.len() == 2 * n => Ok(img
            .data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect()),
        Some(PixelType::U8) if img.data.len() == n => {
            Ok(img.data.iter().map(|&b| b as u16).collect())
        }
        _ => bail!(
            "the daemon sent an image whose size does not match its shape ({}x{}, {} bytes)",
            img.width,
            img.height,
            img.data.len()
        ),
    }
}

/// Writes an image to `path`: `.tif`/`.tiff` keeps the raw pixels, `.png` is an auto-contrast
/// 8-bit rendering for looking at.
pub fn save_image(img: &Image, path: &Path) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "tif" | "tiff" => save_tiff(img, path),
        "png" => save_png(img, path),
        _ => bail!(
            "cannot tell the format of {}: name the file .tiff (raw pixels) or .png (auto-contrast preview)",
            path.display()
        ),
    }
}

fn save_tiff(img: &Image, path: &Path) -> anyhow::Result<()> {
    use tiff::encoder::{colortype, TiffEncoder};
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file))?;
    match img.pixel_type {
        Some(PixelType::U8) => {
            enc.write_image::<colortype::Gray8>(img.width, img.height, &img.data)?
        }
        _ => {
            let px = pixels_u16(img)?;
            enc.write_image::<colortype::Gray16>(img.width, img.height, &px)?
        }
    }
    Ok(())
}

/// The 8-bit rendering: the 0.1 and 99.9 percentiles of the image become black and white, so a
/// dim 12-bit image is visible without fiddling.
pub fn auto_contrast(px: &[u16]) -> Vec<u8> {
    let mut hist = vec![0usize; 65536];
    for &p in px {
        hist[p as usize] += 1;
    }
    let percentile = |q: f64| {
        let target = ((px.len() as f64) * q) as usize;
        let mut seen = 0;
        for (v, &c) in hist.iter().enumerate() {
            seen += c;
            if seen > target {
                return v as f64;
            }
        }
        65535.0
    };
    let lo = percentile(0.001);
    let hi = percentile(0.999).max(lo + 1.0);
    px.iter()
        .map(|&p| (((p as f64 - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

fn save_png(img: &Image, path: &Path) -> anyhow::Result<()> {
    let px = pixels_u16(img)?;
    let gray = image::GrayImage::from_raw(img.width, img.height, auto_contrast(&px))
        .context("image buffer does not match its shape")?;
    gray.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_contrast_spans_full_range() {
        let px: Vec<u16> = (0..1000).map(|i| 100 + i).collect();
        let out = auto_contrast(&px);
        assert_eq!(out[0], 0);
        assert_eq!(*out.last().unwrap(), 255);
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
    }
}

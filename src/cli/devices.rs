//! Devices, properties, motion, snaps, presets: `devices`, `props`, `get`, `set`, `move`,
//! `snap`, `presets`, `preset`, `reset`.

use std::path::Path;

use microscoped::client::{self, show_number, show_value, Error, Session};
use microscoped_driver_api::{DeviceKind, PropertyType};

/// A device kind as the API names it (`xy_stage`, `state`), as `devices` has always printed it.
fn kind_name(k: Option<DeviceKind>) -> &'static str {
    match k {
        Some(DeviceKind::Camera) => "camera",
        Some(DeviceKind::Stage) => "stage",
        Some(DeviceKind::XYStage) => "xy_stage",
        Some(DeviceKind::Laser) => "laser",
        Some(DeviceKind::State) => "state",
        Some(DeviceKind::Shutter) => "shutter",
        None => "unspecified",
    }
}

/// `devices`: the instrument and each device's kind, driver and health.
pub async fn list(s: &mut Session) -> Result<(), Error> {
    let inst = s.instrument().await?;
    println!(
        "instrument {:?} (microscoped {})",
        inst.name, inst.daemon_version
    );
    let width = inst.devices.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in inst.devices {
        let kind = kind_name(d.kind);
        let health = if d.fault.is_empty() {
            "ok".to_owned()
        } else {
            format!("FAULTED: {}", d.fault)
        };
        println!("  {:width$}  {kind:9} {:13} {health}", d.name, d.driver);
    }
    Ok(())
}

/// `props DEVICE`: every property with its value, unit, type and limits.
pub async fn props(s: &mut Session, device: &str) -> Result<(), Error> {
    for spec in s.properties(device).await? {
        let ty = show_type(&spec.ty);
        let value = s
            .get_property(device, &spec.name)
            .await
            .map(|v| show_value(v.as_ref()))
            .unwrap_or_else(|e| format!("<{}>", e.message()));
        println!(
            "  {:20} = {:12} {:4} {}{}",
            spec.name,
            value,
            spec.unit.as_deref().unwrap_or(""),
            ty,
            if spec.read_only { " (read-only)" } else { "" }
        );
    }
    Ok(())
}

/// A property's type and limits as `props` prints them. A driver says "no limit" with the
/// type's extreme (`f64::MAX`, `i64::MAX`): that reads as "no upper limit", not as 309 digits.
fn show_type(ty: &PropertyType) -> String {
    let float = |x: f64| (x.is_finite() && x.abs() < f64::MAX).then(|| show_number(x));
    match ty {
        PropertyType::Bool => "bool".to_owned(),
        PropertyType::Int { min, max } => range(
            "int",
            (*min > i64::MIN).then(|| min.to_string()),
            (*max < i64::MAX).then(|| max.to_string()),
        ),
        PropertyType::Float { min, max } => range("float", float(*min), float(*max)),
        PropertyType::String => "string".to_owned(),
        PropertyType::Enum { allowed } => format!("one of {}", allowed.join("|")),
    }
}

/// "float 0..=100", "float >= 0 (no upper limit)", "int (no limit)": `None` is an open end.
fn range(ty: &str, min: Option<String>, max: Option<String>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{ty} {lo}..={hi}"),
        (Some(lo), None) => format!("{ty} >= {lo} (no upper limit)"),
        (None, Some(hi)) => format!("{ty} <= {hi} (no lower limit)"),
        (None, None) => format!("{ty} (no limit)"),
    }
}

/// `get DEVICE PROPERTY`.
pub async fn get(s: &mut Session, device: &str, property: &str) -> Result<(), Error> {
    let v = s.get_property(device, property).await?;
    println!("{}", show_value(v.as_ref()));
    Ok(())
}

/// `set DEVICE PROPERTY VALUE`: the text parsed by the property's type, then the value the
/// device took.
pub async fn set(s: &mut Session, device: &str, property: &str, text: &str) -> Result<(), Error> {
    let specs = s.properties(device).await?;
    let spec = specs.iter().find(|s| s.name == property);
    let value =
        client::parse_value(text, spec).map_err(|e| anyhow::anyhow!("{device}.{property}: {e}"))?;
    let v = s.set_property(device, property, value).await?;
    println!("{device}.{property} = {}", show_value(v.as_ref()));
    Ok(())
}

/// `move STAGE POSITION...`: moves, waits unless `no_wait`, prints where it is.
pub async fn move_stage(
    s: &mut Session,
    device: &str,
    position_um: Vec<f64>,
    relative: bool,
    no_wait: bool,
) -> Result<(), Error> {
    s.move_stage(device, position_um, relative).await?;
    if !no_wait {
        s.wait_for_idle(device).await?;
    }
    let p = s.position(device).await?;
    let coords: Vec<String> = p.position_um.iter().map(|v| format!("{v:.3}")).collect();
    println!(
        "{device} at {} um{}",
        coords.join(", "),
        if p.busy { " (moving)" } else { "" }
    );
    Ok(())
}

/// `snap -o FILE`: one image into a file.
pub async fn snap(
    s: &mut Session,
    output: &Path,
    camera: &str,
    exposure_ms: Option<f64>,
) -> Result<(), Error> {
    let img = s.snap(camera, exposure_ms).await?;
    client::save_image(&img, output)?;
    println!(
        "{}: {}x{} {}-bit from {} ({} ms)",
        output.display(),
        img.width,
        img.height,
        img.bit_depth,
        img.camera,
        img.exposure_ms
    );
    Ok(())
}

/// `presets`: every group and what each of its presets sets.
pub async fn presets(s: &mut Session) -> Result<(), Error> {
    let groups = s.presets().await?;
    if groups.is_empty() {
        println!("no presets in this instrument's config");
    }
    for g in groups {
        println!("{}", g.name);
        for p in g.presets {
            let settings: Vec<String> = p
                .settings
                .iter()
                .map(|v| {
                    format!(
                        "{}.{}={}",
                        v.device,
                        v.property,
                        show_value(v.value.as_ref())
                    )
                })
                .collect();
            println!("  {:<12} {}", p.name, settings.join(" "));
        }
    }
    Ok(())
}

/// `preset GROUP NAME`: applies it and prints what it set.
pub async fn apply_preset(s: &mut Session, group: &str, name: &str) -> Result<(), Error> {
    for v in s.apply_preset(group, name).await? {
        println!(
            "{}.{} = {}",
            v.device,
            v.property,
            show_value(v.value.as_ref())
        );
    }
    Ok(())
}

/// `reset DEVICE`.
pub async fn reset(s: &mut Session, device: &str) -> Result<(), Error> {
    let name = s.reset_device(device).await?;
    println!("{name}: answering again, fault cleared");
    Ok(())
}

//! The checks the simulated devices' settings share; the error is the driver API's
//! [`SettingError`].

// One setting-error type for every driver, from the driver API.
pub use microscoped_driver_api::SettingError;

/// Checks that a float setting is finite and within `min..=max`.
pub(crate) fn check_range(key: &str, value: f64, min: f64, max: f64) -> Result<(), SettingError> {
    if value.is_finite() && value >= min && value <= max {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!("must be within {min}..={max}, got {value}"),
        ))
    }
}

/// Checks that a float setting is finite and strictly positive, and not above `max`.
pub(crate) fn check_positive(key: &str, value: f64, max: f64) -> Result<(), SettingError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!("must be above 0 and at most {max}, got {value}"),
        ))
    }
}

/// Checks a `[min, max]` travel: both finite and min below max.
pub(crate) fn check_interval(key: &str, range: [f64; 2]) -> Result<(), SettingError> {
    let [min, max] = range;
    if !min.is_finite() || !max.is_finite() {
        return Err(SettingError::new(
            key,
            format!("both ends must be finite numbers, got [{min}, {max}]"),
        ));
    }
    if min >= max {
        return Err(SettingError::new(
            key,
            format!("min must be below max, got [{min}, {max}]"),
        ));
    }
    Ok(())
}

/// Checks that `value` lies inside the travel `range` (already checked with [`check_interval`]).
pub(crate) fn check_inside(
    key: &str,
    value: f64,
    range_key: &str,
    range: [f64; 2],
) -> Result<(), SettingError> {
    if value.is_finite() && value >= range[0] && value <= range[1] {
        Ok(())
    } else {
        Err(SettingError::new(
            key,
            format!(
                "must lie inside {range_key} [{}, {}], got {value}",
                range[0], range[1]
            ),
        ))
    }
}

/// The largest `hang_ms` accepted: a simulated hang longer than this is a config mistake, and it
/// would hold a device thread for that long.
pub(crate) const MAX_HANG_MS: u64 = 600_000;

/// Checks the `hang_ms` every device has.
pub(crate) fn check_hang(hang_ms: u64) -> Result<(), SettingError> {
    if hang_ms <= MAX_HANG_MS {
        Ok(())
    } else {
        Err(SettingError::new(
            "hang_ms",
            format!("must be at most {MAX_HANG_MS}, got {hang_ms}"),
        ))
    }
}

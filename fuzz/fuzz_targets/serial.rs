//! The serial drivers' reply parsing: ASI, Prior, OBIS and Cobolt drivers, each over a real
//! port to a controller whose replies are the input (see `microscoped_fuzz::serial`). The
//! first byte picks the device, the rest are its replies. A refusal is fine; a panic, or a
//! number that is not finite handed to the daemon, is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| microscoped_fuzz::serial::run(data));

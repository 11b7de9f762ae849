//! Reading CPU profiles in pprof's protobuf, as the API answers them and pushes them.

use std::collections::BTreeMap;

use pyroscope::encode::r#gen::google::Profile;

/// The function at `location` of `profile`.
pub fn function_of(profile: &Profile, location: u64) -> Option<&str> {
    let location = profile.location.iter().find(|found| found.id == location)?;
    let function = location.line.first()?.function_id;
    let function = profile.function.iter().find(|found| found.id == function)?;
    Some(profile.string_table[function.name as usize].as_str())
}

/// The CPU time each function of ours was the innermost of ours on the stack.
pub fn time_in_ours(profile: &Profile) -> BTreeMap<&str, i64> {
    let mut ours = BTreeMap::new();
    for sample in &profile.sample {
        let innermost = sample
            .location_id
            .iter()
            .filter_map(|location| function_of(profile, *location))
            .find(|name| name.starts_with("bank_api::") || name.starts_with("bank_core::"));
        if let Some(name) = innermost {
            *ours.entry(name).or_default() += sample.value.first().copied().unwrap_or_default();
        }
    }
    ours
}

/// The function of ours the CPU was most in, by [`time_in_ours`].
pub fn hottest_of_ours(profile: &Profile) -> Option<&str> {
    let ours = time_in_ours(profile);
    ours.into_iter()
        .max_by_key(|(_, time)| *time)
        .map(|(name, _)| name)
}

//! Scatter updates of the engine's per-key state and unions of sorted id sets: the numpy
//! versions (`np.unique`, `ufunc.at`) hash or sort what a bitmap over the dense ids does in
//! one pass (see `inventory360.engine.state` and `engine.merge_results`).

/// Distinct keys (sorted) with their available and reserved values from before.
pub type Touched = (Vec<i64>, Vec<i64>, Vec<i64>);

/// The ids whose bits are set, in increasing order.
fn set_bits(bits: &[u64], out: &mut Vec<i64>) {
    for (w, &word) in bits.iter().enumerate() {
        let mut m = word;
        while m != 0 {
            out.push(((w << 6) + m.trailing_zeros() as usize) as i64);
            m &= m - 1;
        }
    }
}

/// Adds each touch `i` to key `kid[i]`: `avail += d_avail[i]`, `res += d_res[i]` (both
/// wrapping, as numpy's int64 does) and `upd = max(upd, when[i])`. Returns the distinct
/// keys touched, sorted, with their `avail` and `res` from before the call.
///
/// Every slice of touches has the length of `kid`; every key is below `avail.len()`,
/// which `res` and `upd` share (checked: `Err` before anything changes).
pub fn apply_touches(
    kid: &[i64],
    d_avail: &[i64],
    d_res: &[i64],
    when: &[i64],
    avail: &mut [i64],
    res: &mut [i64],
    upd: &mut [i64],
) -> Result<Touched, &'static str> {
    let n_keys = avail.len();
    if d_avail.len() != kid.len() || d_res.len() != kid.len() || when.len() != kid.len() {
        return Err("touch arrays differ in length");
    }
    if res.len() != n_keys || upd.len() != n_keys {
        return Err("state columns differ in length");
    }
    let mut bits = vec![0u64; n_keys.div_ceil(64)];
    for &k in kid {
        if k < 0 || k as usize >= n_keys {
            return Err("key id out of range");
        }
        bits[k as usize >> 6] |= 1 << (k & 63);
    }
    let mut ids = Vec::new();
    set_bits(&bits, &mut ids);
    let before_a = ids.iter().map(|&k| avail[k as usize]).collect();
    let before_r = ids.iter().map(|&k| res[k as usize]).collect();
    for i in 0..kid.len() {
        let k = kid[i] as usize;
        avail[k] = avail[k].wrapping_add(d_avail[i]);
        res[k] = res[k].wrapping_add(d_res[i]);
        upd[k] = upd[k].max(when[i]);
    }
    Ok((ids, before_a, before_r))
}

/// The distinct values of `parts` (non-negative ids; each part may be in any order),
/// sorted, and, when `with_first`, for each the index of its first occurrence in the
/// parts' concatenation (else that list is empty).
pub fn union_first(parts: &[&[i64]], with_first: bool) -> Result<(Vec<i64>, Vec<i64>), &'static str> {
    let mut bound = 0usize;
    for p in parts {
        for &v in p.iter() {
            if v < 0 {
                return Err("negative id");
            }
            bound = bound.max(v as usize + 1);
        }
    }
    let mut bits = vec![0u64; bound.div_ceil(64)];
    for p in parts {
        for &v in p.iter() {
            bits[v as usize >> 6] |= 1 << (v & 63);
        }
    }
    let mut ids = Vec::new();
    set_bits(&bits, &mut ids);
    if !with_first {
        return Ok((ids, Vec::new()));
    }
    // An id-sized array: faster than finding each value's rank among the set bits
    // (measured: 9–11 against 13–14 ms for six parts of 250k keys out of 1M).
    let mut first = vec![0i64; bound];
    // Backwards, so the earliest occurrence is written last.
    let mut g: usize = parts.iter().map(|p| p.len()).sum();
    for p in parts.iter().rev() {
        for &v in p.iter().rev() {
            g -= 1;
            first[v as usize] = g as i64;
        }
    }
    let idx = ids.iter().map(|&v| first[v as usize]).collect();
    Ok((ids, idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_add_up_and_report_values_before() {
        let mut avail = vec![10, 20, 30, 40];
        let mut res = vec![1, 2, 3, 4];
        let mut upd = vec![5, 5, 5, i64::MIN];
        let (ids, ba, br) = apply_touches(
            &[3, 1, 3],
            &[1, 2, 3],
            &[0, -2, 7],
            &[9, 4, 2],
            &mut avail,
            &mut res,
            &mut upd,
        )
        .unwrap();
        assert_eq!((ids, ba, br), (vec![1, 3], vec![20, 40], vec![2, 4]));
        assert_eq!(avail, vec![10, 22, 30, 44]);
        assert_eq!(res, vec![1, 0, 3, 11]);
        assert_eq!(upd, vec![5, 5, 5, 9]);
        assert!(apply_touches(&[4], &[0], &[0], &[0], &mut avail, &mut res, &mut upd).is_err());
        assert_eq!(avail, vec![10, 22, 30, 44]);
    }

    #[test]
    fn union_keeps_first_occurrences() {
        let parts: [&[i64]; 3] = [&[2, 70, 5], &[], &[5, 0, 70, 130]];
        let (ids, idx) = union_first(&parts, true).unwrap();
        assert_eq!(ids, vec![0, 2, 5, 70, 130]);
        assert_eq!(idx, vec![4, 0, 2, 1, 6]);
        assert_eq!(union_first(&parts, false).unwrap(), (ids, vec![]));
        assert_eq!(union_first(&[], true).unwrap(), (vec![], vec![]));
        assert!(union_first(&[&[-1]], true).is_err());
    }
}

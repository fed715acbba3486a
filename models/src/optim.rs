//! A small Nelder–Mead minimiser for the few smoothing parameters of the models.

/// Minimises `f` from `x0` with initial step `step`, using at most `max_evals` evaluations.
/// Returns the best point and its value.
#[allow(clippy::needless_range_loop)]
pub fn nelder_mead<F: FnMut(&[f64]) -> f64>(
    mut f: F,
    x0: &[f64],
    step: f64,
    max_evals: usize,
) -> (Vec<f64>, f64) {
    let d = x0.len();
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(d + 1);
    let v0 = f(x0);
    simplex.push((x0.to_vec(), v0));
    for i in 0..d {
        let mut x = x0.to_vec();
        x[i] += step;
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut evals = d + 1;
    let clean = |v: f64| if v.is_finite() { v } else { f64::MAX };
    for s in simplex.iter_mut() {
        s.1 = clean(s.1);
    }
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let best = simplex[0].1;
        let worst = simplex[d].1;
        if (worst - best).abs() <= 1e-10 * (best.abs() + 1e-12) {
            break;
        }
        let mut c = vec![0.0; d];
        for s in &simplex[..d] {
            for j in 0..d {
                c[j] += s.0[j] / d as f64;
            }
        }
        let at =
            |t: f64, w: &[f64]| -> Vec<f64> { (0..d).map(|j| c[j] + t * (w[j] - c[j])).collect() };
        let xr = at(-1.0, &simplex[d].0);
        let vr = clean(f(&xr));
        evals += 1;
        if vr < simplex[0].1 {
            let xe = at(-2.0, &simplex[d].0);
            let ve = clean(f(&xe));
            evals += 1;
            simplex[d] = if ve < vr { (xe, ve) } else { (xr, vr) };
        } else if vr < simplex[d - 1].1 {
            simplex[d] = (xr, vr);
        } else {
            let xc = at(0.5, &simplex[d].0);
            let vc = clean(f(&xc));
            evals += 1;
            if vc < simplex[d].1 {
                simplex[d] = (xc, vc);
            } else {
                let b = simplex[0].0.clone();
                for s in simplex.iter_mut().skip(1) {
                    for j in 0..d {
                        s.0[j] = b[j] + 0.5 * (s.0[j] - b[j]);
                    }
                    s.1 = clean(f(&s.0));
                    evals += 1;
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, v) = simplex.swap_remove(0);
    (x, v)
}

/// Logistic function.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Inverse of the logistic function.
#[inline]
pub fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// Solves the k×k system `a x = b` (row-major) by Gaussian elimination with partial pivoting,
/// after adding a tiny ridge to the diagonal. `None` when singular.
pub fn solve(a: &mut [f64], b: &mut [f64], k: usize) -> Option<Vec<f64>> {
    for i in 0..k {
        a[i * k + i] += 1e-9 * (1.0 + a[i * k + i].abs());
    }
    eliminate(a, b, k)
}

/// Gaussian elimination with partial pivoting on the k×k system `a x = b` (row-major), as
/// given (no ridge). `None` when singular.
pub fn eliminate(a: &mut [f64], b: &mut [f64], k: usize) -> Option<Vec<f64>> {
    for col in 0..k {
        let piv =
            (col..k).max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))?;
        if a[piv * k + col].abs() < 1e-12 {
            return None;
        }
        if piv != col {
            for c in 0..k {
                a.swap(piv * k + c, col * k + c);
            }
            b.swap(piv, col);
        }
        for r in col + 1..k {
            let f = a[r * k + col] / a[col * k + col];
            for c in col..k {
                a[r * k + c] -= f * a[col * k + c];
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; k];
    for r in (0..k).rev() {
        let mut s = b[r];
        for c in r + 1..k {
            s -= a[r * k + c] * x[c];
        }
        x[r] = s / a[r * k + r];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic() {
        let (x, v) = nelder_mead(
            |x| (x[0] - 1.0).powi(2) + (x[1] + 2.0).powi(2),
            &[0.0, 0.0],
            0.5,
            400,
        );
        assert!(v < 1e-6 && (x[0] - 1.0).abs() < 1e-3 && (x[1] + 2.0).abs() < 1e-3);
    }
}

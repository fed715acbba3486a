//! Shadow mode (a shadow policy never changes the applied run, and its scores are the
//! hand-computable ones) and the predictive policy's cross-function memory budget.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use prewarm_scaler::policy::{
    PolicyFactory, PolicySpec, Predictive, PredictiveConfig, ShadowFactory,
};
use prewarm_simulator::trace::MemoryTrace;
mod common;
use common::{meta, run};

fn factory(spec: &str) -> Box<dyn PolicyFactory> {
    PolicySpec::parse(spec).unwrap().build().unwrap()
}

/// A busy function, a sparse one, a timer-like one and a bursty one over 4 hours.
fn mixed_trace() -> MemoryTrace {
    MemoryTrace::single_day(
        240,
        vec![
            meta("busy", 256.0),
            meta("sparse", 512.0),
            meta("timer", 128.0),
            meta("burst", 1024.0),
        ],
        vec![
            (0..240).map(|m| (m, 5 + (m % 60) / 6)).collect(),
            vec![(3, 1), (17, 2), (29, 1), (95, 1), (181, 3)],
            (0..240).step_by(15).map(|m| (m, 1)).collect(),
            (0..240).step_by(30).map(|m| (m, 120)).collect(),
        ],
    )
}

#[test]
fn a_shadow_never_changes_the_applied_run() {
    let applied = [
        "fixed",
        "fixed:2m",
        "hybrid-histogram",
        "reactive",
        "predictive",
        "none",
    ];
    // Shadows that tick at other times than the applied policy, and one that never ticks.
    for shadow in ["predictive", "reactive", "fixed:30m"] {
        for capacity in [None, Some(1.0)] {
            let alone = run(
                mixed_trace(),
                applied.iter().map(|p| factory(p)).collect(),
                capacity,
            );
            let shadowed = run(
                mixed_trace(),
                applied
                    .iter()
                    .map(|p| {
                        Box::new(ShadowFactory::new(factory(p), factory(shadow)))
                            as Box<dyn PolicyFactory>
                    })
                    .collect(),
                capacity,
            );
            for (a, s) in alone.results.iter().zip(&shadowed.results) {
                let what = format!("{} shadowed by {shadow}, capacity {capacity:?}", a.policy);
                assert_eq!(a.policy, s.policy, "{what}");
                assert_eq!(a.invocations, s.invocations, "{what}");
                assert_eq!(a.cold_starts, s.cold_starts, "{what}");
                assert_eq!(a.wasted_memory_gb_s, s.wasted_memory_gb_s, "{what}");
                assert_eq!(a.prewarms, s.prewarms, "{what}");
                assert_eq!(a.evictions, s.evictions, "{what}");
                assert_eq!(a.latency_ms, s.latency_ms, "{what}");
                assert!(a.shadow.is_none());
                assert_eq!(s.shadow.as_ref().unwrap().policy, shadow, "{what}");
            }
        }
    }
}

#[test]
fn a_policy_shadowing_itself_agrees_everywhere() {
    for p in ["fixed", "hybrid-histogram", "reactive", "predictive"] {
        let r = run(
            mixed_trace(),
            vec![Box::new(ShadowFactory::new(factory(p), factory(p)))],
            None,
        );
        let st = &r.results[0].shadow.as_ref().unwrap().stats;
        assert!(st.idle_decisions > 0, "{p}");
        assert_eq!(st.idle_agree, st.idle_decisions, "{p}");
        assert_eq!(st.applied_ready_hits, st.shadow_ready_hits, "{p}");
        assert_eq!(st.applied_window_gb_s, st.shadow_window_gb_s, "{p}");
    }
}

/// One 1 GB function invoked once in minute 0 and once in minute 5; the trace ends at minute 20.
fn two_calls() -> MemoryTrace {
    MemoryTrace::single_day(20, vec![meta("f", 1024.0)], vec![vec![(0, 1), (5, 1)]])
}

#[test]
fn shadow_scores_are_hand_computable() {
    // Applied: fixed 10 min. Its waste is the gap between the calls (less the first 100 ms
    // execution) plus the full 10 min after the second call (600 GB·s at 1 GB). The shadow
    // `none` would have held nothing and missed the second call.
    let r = run(
        two_calls(),
        vec![Box::new(ShadowFactory::new(
            factory("fixed"),
            factory("none"),
        ))],
        None,
    );
    let res = &r.results[0];
    assert_eq!(res.cold_starts, 1);
    let st = &res.shadow.as_ref().unwrap().stats;
    assert_eq!(st.idle_arrivals, 2);
    assert_eq!(st.idle_decisions, 2);
    assert_eq!(st.idle_agree, 0);
    assert_eq!(st.applied_ready_hits, 1);
    assert_eq!(st.shadow_ready_hits, 0);
    assert!((st.applied_window_gb_s - (res.wasted_memory_gb_s - 600.0)).abs() < 1e-9);
    assert_eq!(st.shadow_window_gb_s, 0.0);
    assert_eq!(st.ticks, 0);

    // Reversed: `none` applied cold-starts both calls; a fixed 10-min shadow would have had the
    // instance ready for the second, holding it for the whole gap.
    let r = run(
        two_calls(),
        vec![
            Box::new(ShadowFactory::new(factory("none"), factory("fixed")))
                as Box<dyn PolicyFactory>,
            factory("fixed"),
        ],
        None,
    );
    assert_eq!(r.results[0].cold_starts, 2);
    let st = &r.results[0].shadow.as_ref().unwrap().stats;
    assert_eq!(st.applied_ready_hits, 0);
    assert_eq!(st.shadow_ready_hits, 1);
    // The gap the shadow would have held equals fixed's own waste before its second call.
    let fixed_waste = r.results[1].wasted_memory_gb_s;
    assert!((st.shadow_window_gb_s - (fixed_waste - 600.0)).abs() < 1e-9);
    assert_eq!(st.applied_window_gb_s, 0.0);
}

#[test]
fn a_shadow_reports_its_reasons_and_scale_outs() {
    // `fixed` applied never pre-warms; a predictive shadow sees the 120-call bursts every
    // 30 minutes and asks for capacity ahead of or during them.
    let r = run(
        mixed_trace(),
        vec![Box::new(ShadowFactory::new(
            factory("fixed"),
            factory("predictive"),
        ))],
        None,
    );
    let st = &r.results[0].shadow.as_ref().unwrap().stats;
    assert!(st.ticks > 0);
    assert!(st.scale_out > 0 && st.instances_added >= st.scale_out);
    assert!(
        st.reasons.contains_key("idle-histogram"),
        "{:?}",
        st.reasons
    );
    assert_eq!(r.results[0].prewarms, 0);
    let json = serde_json::to_value(&r).unwrap();
    let shadow = &json["results"][0]["shadow"];
    assert_eq!(shadow["policy"], "predictive");
    assert!(shadow["ticks"].as_u64().unwrap() > 0);
}

/// Twenty sparse-to-busy 1 GB functions whose idle holds overlap.
fn many_functions() -> MemoryTrace {
    let metas = (0..20).map(|k| meta(&format!("f{k}"), 1024.0)).collect();
    let bins = (0..20u32)
        .map(|k| {
            (0..240)
                .step_by(3 + k as usize % 7)
                .map(|m| (m, 1 + k % 4))
                .collect()
        })
        .collect();
    MemoryTrace::single_day(240, metas, bins)
}

fn predictive_with_budget(budget_gb: f64) -> Predictive {
    Predictive::new(
        &format!("predictive:budget={budget_gb}"),
        PredictiveConfig {
            budget_gb: Some(budget_gb),
            ..PredictiveConfig::default()
        },
    )
}

#[test]
fn a_memory_budget_caps_idle_memory_across_functions() {
    let end_ms = 240 * 60_000;
    // Unconstrained, the policy holds many GB idle at its peak.
    let free = predictive_with_budget(1e6);
    let probe = free.clone();
    let r_free = run(many_functions(), vec![Box::new(free)], None);
    let free_peak = probe.budget().unwrap().peak_gb();
    assert!(free_peak > 8.0, "{free_peak}");

    let tight = predictive_with_budget(4.0);
    let probe = tight.clone();
    let r = run(many_functions(), vec![Box::new(tight)], None);
    let b = probe.budget().unwrap();
    // Never more than the budget idle at once, and the budget did bind.
    assert!(b.peak_gb() <= 4.0 + 1e-9, "{}", b.peak_gb());
    assert!(b.refused() > 0);
    // The ledger's account of idle memory is the simulator's measured waste: every idle
    // instance went through it, and reuse released the right hold.
    let waste = r.results[0].wasted_memory_gb_s;
    let ledger = b.held_gb_s(end_ms);
    assert!(
        (ledger - waste).abs() <= 1e-6 * waste.max(1.0),
        "ledger {ledger} vs waste {waste}"
    );
    // Less idle memory than unconstrained (4 GB for 4 h is at most 57,600 GB·s), more cold
    // starts, same invocations.
    assert!(waste <= 4.0 * 240.0 * 60.0 + 1e-6);
    assert!(waste < r_free.results[0].wasted_memory_gb_s);
    assert!(r.results[0].cold_starts > r_free.results[0].cold_starts);
    assert_eq!(r.results[0].invocations, r_free.results[0].invocations);

    // Reproducible: the shared ledger is driven in one global time order.
    let again = run(
        many_functions(),
        vec![Box::new(predictive_with_budget(4.0))],
        None,
    );
    assert_eq!(again.results[0].cold_starts, r.results[0].cold_starts);
    assert_eq!(again.results[0].wasted_memory_gb_s, waste);
}

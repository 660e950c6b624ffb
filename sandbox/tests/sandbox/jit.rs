//! `zvm_jail`/`zvm_unjail` (`jit.c`): heap code runs only once validated and
//! jailed; bad regions are refused with the documented errors.

use crate::harness::{assert_kv, guest, Lab};

#[test]
fn jail_runs_validated_heap_code_and_refuses_bad_regions() {
    let lab = Lab::new();
    let out = lab.run(&lab.manifest(guest("jit"))).expect_code(0);
    let r = out.report();
    assert_eq!((r.validator, r.user_code, r.exit_state.as_str()), (0, 0, "ok"), "{out}");
    assert_kv(
        &lab.read_string("stdout"),
        &[
            ("jail", &0),
            ("jit", &42),
            ("unjail", &0),
            ("rejail", &0),
            ("rejit", &7),
            ("jail_syscall", &-1),
            ("failed_jail_rw", &"ok"),
            ("jail_misaligned", &-22),
            ("jail_badsize", &-22),
            ("jail_nonheap", &-22),
            ("done", &1),
        ],
    );
    assert_eq!(lab.read("stderr"), b"");
}

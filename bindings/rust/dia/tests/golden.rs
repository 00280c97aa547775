//! The safe API on the tiny fixtures against the reference goldens (float32: 1e-4; codes exact).
mod common;

use common::*;
use dia::{Dac, GenParams, Model, Status};

const C: usize = 9;
const V: usize = 1028;
const TF_T: usize = 24;

fn model() -> Model {
    Model::load(fixture("dia-hf"), &opts()).expect("load dia-hf")
}

#[test]
fn versions() {
    assert_eq!(dia::abi_version() as u32, dia::sys::DIA_ABI_VERSION);
    assert_eq!(dia::version().as_bytes(), &dia::sys::DIA_VERSION_STRING[..dia::sys::DIA_VERSION_STRING.len() - 1]);
}

#[test]
fn load_and_info() {
    let m = model();
    assert_eq!(m.channels(), 9);
    assert_eq!(m.vocab(), 1028);
    assert_eq!(m.max_frames(), 256);
    assert_eq!(m.delays().unwrap(), vec![0, 8, 9, 10, 11, 12, 13, 14, 15]);
    let e = m.info("nope").unwrap_err();
    assert_eq!(e.status, Status::InvalidArg);
    assert!(e.message.contains("nope"), "{}", e);
    // the original nari-labs layout loads too
    let n = Model::load(fixture("dia-nari"), &opts()).unwrap();
    assert_eq!(n.channels(), 9);
}

#[test]
fn errors_carry_the_library_message() {
    let e = Model::load(fixture("no-such-model"), &opts()).err().expect("missing model must fail");
    assert_eq!(e.status, Status::Io);
    assert!(!e.message.is_empty());
    let e = Model::load(fixture("dia-hf"), &opts().dtype("f64")).err().unwrap();
    assert_eq!(e.status, Status::InvalidArg);
    assert!(e.message.contains("f64"), "{}", e);
    let e = Model::load(fixture("dia-hf"), &opts().encoder_memory("disk")).err().unwrap();
    assert_eq!(e.status, Status::InvalidArg);
    assert!(e.message.contains("encoder_memory"), "{}", e);
    // "host" is accepted everywhere (a no-op on the CPU, where the weights are host memory)
    assert!(Model::load(fixture("dia-hf"), &opts().encoder_memory("host")).is_ok());
    let e = GenParams::new().unwrap().with("top_p", 0.0).err().unwrap();
    assert_eq!(e.status, Status::InvalidArg);
}

#[test]
fn tokenize_matches_golden() {
    let g = golden();
    assert_eq!(dia::tokenize(TEXT0).unwrap(), g["text0.ids"].i32());
    assert_eq!(dia::tokenize(TEXT1).unwrap(), g["text1.ids"].i32());
}

#[test]
fn encoder_matches_golden() {
    let g = golden();
    let m = model();
    let enc = m.encode(&[TEXT0, TEXT1], false).unwrap();
    assert_eq!(enc.batch().unwrap(), 2);
    for (i, name) in ["text0.enc_out", "text1.enc_out"].iter().enumerate() {
        let want = g[*name].f32();
        assert_eq!(enc.length(i).unwrap(), g[*name].shape[1]);
        let got = enc.output(i).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(d <= 1e-4, "{}: max |diff| {}", name, d);
    }
    assert_eq!(m.encode(&[&"x".repeat(300)], false).err().unwrap().status, Status::TextTooLong);
}

#[test]
fn prefill_step_and_logits_match_golden() {
    let g = golden();
    let want = g["text0.tf_logits"].f32();
    let tok = g["text0.tf_tokens"].i32();
    let m = model();
    let enc = m.encode(&[TEXT0], false).unwrap();
    let mut cache = m.kvcache(1, 32).unwrap();
    let mut dec = m.decoder(&enc, &mut cache).unwrap();
    let got = dec.prefill(&tok).unwrap();
    assert_eq!(got.len(), 2 * TF_T * C * V);
    let d = max_abs_diff(&got, &want);
    assert!(d <= 1e-4, "prefill: max |diff| {}", d);
    assert_eq!(dec.cache().length(1).unwrap(), TF_T);

    // prefill 7 positions, then one step at a time
    dec.cache_mut().reset().unwrap();
    let k = 7;
    dec.prefill_no_logits(&tok[..k * C]).unwrap();
    for t in k..TF_T {
        dec.step(&tok[t * C..(t + 1) * C]).unwrap();
        let l = dec.logits().unwrap();
        for r in 0..2 {
            let w = &want[(r * TF_T + t) * C * V..(r * TF_T + t + 1) * C * V];
            let d = max_abs_diff(&l[r * C * V..(r + 1) * C * V], w);
            assert!(d <= 1e-4, "step {} row {}: {}", t, r, d);
        }
    }
    let kv = dec.cache().read(1, 1, 0).unwrap();
    assert_eq!(kv.len(), (m.info("kv_heads").unwrap() * m.info("head_dim").unwrap()) as usize * TF_T);
    drop(dec);
    cache.truncate(4).unwrap();
    assert_eq!(cache.length(0).unwrap(), 4);
    assert_eq!(cache.capacity().unwrap(), 32);
}

#[test]
fn capacity_error() {
    let g = golden();
    let tok = g["text0.tf_tokens"].i32();
    let m = model();
    let enc = m.encode(&[TEXT0], false).unwrap();
    let mut cache = m.kvcache(1, 8).unwrap();
    let mut dec = m.decoder(&enc, &mut cache).unwrap();
    let e = dec.prefill(&tok).unwrap_err();
    assert_eq!(e.status, Status::Capacity);
    assert!(!e.message.is_empty());
    assert_eq!(dec.cache().length(0).unwrap(), 0);
    assert_eq!(dec.step(&[0; 3]).unwrap_err().status, Status::InvalidArg);
}

fn greedy() -> GenParams {
    GenParams::new()
        .and_then(|p| p.with("temperature", 0.0))
        .and_then(|p| p.with("cfg_scale", 3.0))
        .and_then(|p| p.with("cfg_filter_top_k", 45.0))
        .and_then(|p| p.with("max_tokens", 128.0))
        .unwrap()
}

#[test]
fn greedy_generation_matches_golden() {
    let g = golden();
    let m = model();
    let out = m.generate(&[TEXT0, TEXT1], None, &greedy(), None).unwrap();
    assert_eq!(out.len(), 2);
    for (b, name) in ["text0.greedy_codes", "text1.greedy_codes"].iter().enumerate() {
        assert_eq!(out[b].frames, g[*name].shape[0]);
        assert_eq!(out[b].data, g[*name].i32(), "{}", name);
    }
    // with an audio prompt, in a batch with an item without one
    let prompt = g["prompt.codes"].i32();
    let both = m.generate(&[TEXT0, TEXT0], Some(&[None, Some(&prompt[..])]), &greedy(), None).unwrap();
    assert_eq!(both[0].data, g["batch.item0.greedy_codes"].i32());
    assert_eq!(both[1].data, g["batch.item1.greedy_codes"].i32());
}

#[test]
fn frame_callback_streams_and_cancels() {
    let m = model();
    let mut seen: Vec<(usize, usize, Vec<i32>)> = Vec::new();
    let mut record = |item: usize, frame: usize, codes: &[i32]| {
        seen.push((item, frame, codes.to_vec()));
        false
    };
    let out = m.generate(&[TEXT0], None, &greedy(), Some(&mut record)).unwrap();
    assert_eq!(seen.len(), out[0].frames);
    for (t, (item, frame, codes)) in seen.iter().enumerate() {
        assert_eq!((*item, *frame), (0, t));
        assert_eq!(&codes[..], out[0].frame(t));
    }
    let mut stop = |_: usize, frame: usize, _: &[i32]| frame >= 3;
    let e = m.generate(&[TEXT0], None, &greedy(), Some(&mut stop)).unwrap_err();
    assert_eq!(e.status, Status::Cancelled);
}

#[test]
#[should_panic(expected = "from the callback")]
fn callback_panic_is_resumed() {
    let m = model();
    let mut boom = |_: usize, _: usize, _: &[i32]| -> bool { panic!("from the callback") };
    let _ = m.generate(&[TEXT0], None, &greedy(), Some(&mut boom));
}

#[test]
fn sampler_probs_match_golden() {
    let g = golden();
    let cond = g["sampler.cond"].f32();
    let uncond = g["sampler.uncond"].f32();
    let want = g["sampler.probs"].f32();
    let p = GenParams::new().unwrap();
    assert_eq!(p.get("temperature").unwrap(), 1.2);
    assert_eq!(p.sampler_probs(&cond[..100], &uncond[..100]).unwrap_err().status, Status::InvalidArg);
    let n = C * V;
    for r in 0..g["sampler.cond"].shape[0] {
        let got = p.sampler_probs(&cond[r * n..(r + 1) * n], &uncond[r * n..(r + 1) * n]).unwrap();
        let d = max_abs_diff(&got, &want[r * n..(r + 1) * n]);
        assert!(d <= 1e-5, "row {}: {}", r, d);
        let codes = p.sample_frame(&cond[r * n..(r + 1) * n], &uncond[r * n..(r + 1) * n], 0, r as u64).unwrap();
        for (c, &code) in codes.iter().enumerate() {
            assert!(got[c * V + code as usize] > 0.0, "row {} channel {}: sampled a zero-probability code", r, c);
        }
    }
}

#[test]
fn dac_decode_and_encode_match_golden() {
    let g = golden();
    let mut dac = Dac::load(fixture("dac-hf"), &opts()).unwrap();
    assert_eq!(dac.info("sample_rate").unwrap(), 44100);
    // golden codes are [Q, n]: transpose to [n, Q]
    let t = &g["dac.decode_codes"];
    let (q, n) = (t.shape[0], t.shape[1]);
    let qn = t.i32();
    let codes: Vec<i32> = (0..n * q).map(|i| qn[(i % q) * n + i / q]).collect();
    let audio = dac.decode(&codes, n).unwrap();
    let d = max_abs_diff(&audio, &g["dac.decode_audio"].f32());
    assert!(d <= 1e-4, "decode: max |diff| {}", d);
    let (enc, frames) = dac.encode(&g["dac.encode_input"].f32()).unwrap();
    let t = &g["dac.encode_codes"];
    let (q, n) = (t.shape[0], t.shape[1]);
    assert_eq!(frames, n);
    let qn = t.i32();
    let want: Vec<i32> = (0..n * q).map(|i| qn[(i % q) * n + i / q]).collect();
    assert_eq!(enc, want);
    assert_eq!(dac.decode(&[1024; 9], 1).unwrap_err().status, Status::BadAudio);
}

#[test]
fn model_is_shared_across_threads() {
    let m = model();
    let g = golden();
    let want = g["text0.greedy_codes"].i32();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| m.generate(&[TEXT0], None, &greedy(), None).unwrap().remove(0).data))
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}

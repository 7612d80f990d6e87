//! The generated anatomy: reproducible, complete, on the right side, and labels that match the
//! tissue under them.

use groundglass_phantom::classes::{self, *};
use groundglass_phantom::{generate, Modality, Phantom, PhantomConfig};

/// Centroids (LPS mm) of every label, from one pass over the volume.
struct Centroids(Vec<Option<[f64; 3]>>, [usize; 256]);

impl Centroids {
    fn of(p: &Phantom) -> Self {
        let [nx, ny, _] = p.dims;
        let mut sum = vec![[0.0f64; 3]; 256];
        let mut n = [0usize; 256];
        for (idx, &l) in p.labels.labels.iter().enumerate() {
            let s = &mut sum[l as usize];
            s[0] += (idx % nx) as f64;
            s[1] += ((idx / nx) % ny) as f64;
            s[2] += (idx / (nx * ny)) as f64;
            n[l as usize] += 1;
        }
        let c = (0..256)
            .map(|l| (n[l] > 0).then(|| p.affine.apply(sum[l].map(|v| v / n[l] as f64))))
            .collect();
        Centroids(c, n)
    }

    fn get(&self, label: u8) -> [f64; 3] {
        self.0[label as usize].unwrap_or_else(|| panic!("no label {label}"))
    }

    /// Centroid of several labels together (voxel-weighted).
    fn of_all(&self, labels: &[u8]) -> [f64; 3] {
        let total: usize = labels.iter().map(|&l| self.1[l as usize]).sum();
        let mut sum = [0.0; 3];
        for &l in labels {
            let c = self.get(l);
            for a in 0..3 {
                sum[a] += c[a] * self.1[l as usize] as f64;
            }
        }
        sum.map(|s| s / total as f64)
    }
}

#[test]
fn the_same_seed_gives_the_same_phantom_and_another_seed_another() {
    let a = generate(&PhantomConfig::ct(11));
    let b = generate(&PhantomConfig::ct(11));
    assert!(a.values == b.values, "values differ for one seed");
    assert!(a.labels == b.labels, "labels differ for one seed");
    let c = generate(&PhantomConfig::ct(12));
    assert!(a.values != c.values);
    assert!(a.labels.labels != c.labels.labels);
    // The anatomy is the seed's: the modality, lesions and noise leave the labels alone.
    let mut other = PhantomConfig::mr(11);
    other.lesions = true;
    other.noise = 0.0;
    let d = generate(&other);
    assert!(a.labels.labels == d.labels.labels);
}

#[test]
fn every_class_is_present_on_several_slices() {
    let configs = (0..6u64).map(|seed| {
        let mut c = if seed % 2 == 0 {
            PhantomConfig::ct(seed)
        } else {
            PhantomConfig::mr(seed)
        };
        c.lesions = seed % 3 == 0;
        c
    });
    // A coarser, non-square grid as well: the layout scales to the field of view.
    let mut coarse = PhantomConfig::ct(99);
    coarse.dims = [96, 88, 64];
    coarse.spacing_mm = [3.5, 3.5, 4.0];
    for config in configs.chain([coarse]) {
        let p = generate(&config);
        let [nx, ny, nz] = p.dims;
        let counts = p.labels.counts();
        for &(id, name) in classes::CLASSES {
            let slices = (0..nz)
                .filter(|&k| p.labels.labels[k * nx * ny..(k + 1) * nx * ny].contains(&id))
                .count();
            assert!(
                counts[id as usize] >= 100 && slices >= 2,
                "seed {} {:?}: {name} has {} voxels on {slices} slices",
                p.seed,
                p.dims,
                counts[id as usize]
            );
        }
        // Nothing outside the class list.
        for (id, &n) in counts.iter().enumerate().skip(1) {
            assert!(
                n == 0 || classes::name(id as u8).is_some(),
                "unexpected label {id}"
            );
        }
    }
}

#[test]
fn organs_lie_on_their_side_and_in_order() {
    for seed in 0..8u64 {
        let p = generate(&PhantomConfig::ct(seed));
        let c = Centroids::of(&p);
        // The public helper agrees with the test's own one-pass centroids.
        assert_eq!(p.centroid_lps(LIVER), Some(c.get(LIVER)));
        let x = |l: u8| c.get(l)[0];
        let y = |l: u8| c.get(l)[1];
        let z = |l: u8| c.get(l)[2];
        // LPS: x grows toward the patient's left.
        assert!(
            x(LIVER) < 0.0 && 0.0 < x(SPLEEN),
            "seed {seed}: liver / spleen"
        );
        assert!(x(KIDNEY_RIGHT) < 0.0 && 0.0 < x(KIDNEY_LEFT), "seed {seed}");
        assert!(x(GALLBLADDER) < 0.0 && x(STOMACH) > 0.0, "seed {seed}");
        let right = c.of_all(&[
            LUNG_UPPER_LOBE_RIGHT,
            LUNG_MIDDLE_LOBE_RIGHT,
            LUNG_LOWER_LOBE_RIGHT,
        ]);
        let left = c.of_all(&[LUNG_UPPER_LOBE_LEFT, LUNG_LOWER_LOBE_LEFT]);
        assert!(right[0] < -30.0 && left[0] > 30.0, "seed {seed}: lungs");
        for l in [
            LUNG_UPPER_LOBE_RIGHT,
            LUNG_MIDDLE_LOBE_RIGHT,
            LUNG_LOWER_LOBE_RIGHT,
        ] {
            assert!(x(l) < 0.0, "seed {seed}: right lobe {l}");
        }
        for l in [LUNG_UPPER_LOBE_LEFT, LUNG_LOWER_LOBE_LEFT] {
            assert!(x(l) > 0.0, "seed {seed}: left lobe {l}");
        }
        assert!(
            x(HEART) > 0.0 && x(AORTA) > 0.0,
            "seed {seed}: heart, aorta"
        );
        // Lower lobes behind and below the upper; the middle lobe in front.
        assert!(y(LUNG_LOWER_LOBE_RIGHT) > y(LUNG_MIDDLE_LOBE_RIGHT));
        assert!(z(LUNG_LOWER_LOBE_LEFT) < z(LUNG_UPPER_LOBE_LEFT));
        // Kidneys, spleen and spine posterior; stomach and gallbladder anterior.
        assert!(y(KIDNEY_RIGHT) > y(LIVER) && y(SPLEEN) > y(STOMACH));
        assert!(y(GALLBLADDER) < y(LIVER));
        // Chest above abdomen above pelvis; the right kidney lower than the left.
        assert!(right[2] > z(LIVER) && left[2] > z(SPLEEN));
        assert!(z(HEART) > z(LIVER) && z(LIVER) > z(URINARY_BLADDER));
        assert!(z(KIDNEY_RIGHT) < z(KIDNEY_LEFT));
        // Vertebrae stacked from L5 up to T1 on the posterior midline.
        for id in VERTEBRAE_L5..=VERTEBRAE_T1 {
            let v = c.get(id);
            assert!(
                v[0].abs() < 6.0 && v[1] > 40.0,
                "seed {seed}: vertebra {id} {v:?}"
            );
            if id > VERTEBRAE_L5 {
                assert!(
                    v[2] > z(id - 1),
                    "seed {seed}: vertebra {id} not above {}",
                    id - 1
                );
            }
        }
        // The aorta in front of the spine on every slice it shares with a vertebra.
        let [nx, ny, nz] = p.dims;
        let plane = nx * ny;
        for k in 0..nz {
            let (mut aorta, mut spine) = ((0.0, 0usize), (0.0, 0usize));
            for (n, &l) in p.labels.labels[k * plane..(k + 1) * plane]
                .iter()
                .enumerate()
            {
                let j = (n / nx) as f64;
                if l == AORTA {
                    aorta = (aorta.0 + j, aorta.1 + 1);
                } else if (VERTEBRAE_L5..=VERTEBRAE_T1).contains(&l) {
                    spine = (spine.0 + j, spine.1 + 1);
                }
            }
            if aorta.1 > 0 && spine.1 > 0 {
                let (a, s) = (aorta.0 / aorta.1 as f64, spine.0 / spine.1 as f64);
                assert!(a < s, "seed {seed} slice {k}: aorta behind the spine");
            }
        }
    }
}

#[test]
fn labels_match_the_tissue_under_them() {
    // Without noise every organ has one or two intensities, and lungs are air-like.
    let mut config = PhantomConfig::ct(5);
    config.noise = 0.0;
    let p = generate(&config);
    let distinct = |label: u8| {
        let mut v: Vec<i16> = p
            .labels
            .labels
            .iter()
            .zip(&p.values)
            .filter(|(&l, _)| l == label)
            .map(|(_, &v)| v)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for l in [
        LIVER,
        SPLEEN,
        KIDNEY_RIGHT,
        KIDNEY_LEFT,
        GALLBLADDER,
        PANCREAS,
        URINARY_BLADDER,
    ] {
        assert_eq!(distinct(l).len(), 1, "label {l}: {:?}", distinct(l));
    }
    for l in [HEART, STOMACH, TRACHEA] {
        assert!(distinct(l).len() <= 2, "label {l}: {:?}", distinct(l));
    }
    assert_eq!(distinct(AORTA).len(), 1);
    for l in VERTEBRAE_L5..=VERTEBRAE_T1 {
        let v = distinct(l);
        assert!(v.iter().all(|&x| x >= 200), "vertebra {l}: {v:?}");
    }
    for l in [
        LUNG_UPPER_LOBE_LEFT,
        LUNG_LOWER_LOBE_LEFT,
        LUNG_UPPER_LOBE_RIGHT,
        LUNG_MIDDLE_LOBE_RIGHT,
        LUNG_LOWER_LOBE_RIGHT,
    ] {
        let v = distinct(l);
        assert!(
            v.iter().all(|&x| (-900..=-780).contains(&x)),
            "lung {l}: {v:?}"
        );
    }
    // The liver's value occurs nowhere else (the organs are told apart by their labels alone).
    let liver = distinct(LIVER)[0];
    let elsewhere = p
        .labels
        .labels
        .iter()
        .zip(&p.values)
        .filter(|(&l, &v)| l != LIVER && v == liver)
        .count();
    assert_eq!(elsewhere, 0);
    // Air outside the body.
    assert_eq!(p.value(0, 0, 0), -1000);
    assert_eq!(p.label(0, 0, 0), 0);
}

#[test]
fn lesions_stay_inside_their_host_and_keep_its_label() {
    let mut config = PhantomConfig::ct(3);
    config.lesions = true;
    config.noise = 0.0;
    let with = generate(&config);
    config.lesions = false;
    let without = generate(&config);
    assert!(!with.lesions.is_empty());
    assert!(with.labels == without.labels);
    let changed: Vec<usize> = (0..with.values.len())
        .filter(|&n| with.values[n] != without.values[n])
        .collect();
    assert_eq!(
        changed.len(),
        with.lesions.iter().map(|l| l.voxels).sum::<usize>()
    );
    for &n in &changed {
        let host = with.labels.labels[n];
        assert!(with.lesions.iter().any(|l| l.host == host));
    }
    for l in &with.lesions {
        assert!(l.voxels > 0);
        assert_eq!(with.labels.at(l.center_lps), l.host, "{l:?}");
    }
}

#[test]
fn mr_has_its_own_contrast() {
    let mut config = PhantomConfig::mr(4);
    config.noise = 0.0;
    let p = generate(&config);
    assert_eq!(p.modality, Modality::Mr);
    assert!(p.values.iter().all(|&v| (0..=1400).contains(&v)));
    // Fat (under the skin, unlabelled) is brighter than liver, liver brighter than lung.
    let mean = |label: u8| {
        let v: Vec<f64> = p
            .labels
            .labels
            .iter()
            .zip(&p.values)
            .filter(|(&l, _)| l == label)
            .map(|(_, &v)| f64::from(v))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(mean(LIVER) > mean(SPLEEN));
    assert!(mean(LIVER) > 3.0 * mean(LUNG_UPPER_LOBE_LEFT));
    assert!(mean(URINARY_BLADDER) < mean(KIDNEY_LEFT));
}

#[test]
fn class_ids_are_radgrounders() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/labels/merged_label_map.json"
    );
    let text = std::fs::read_to_string(path).expect("the label map in assets/");
    let map: std::collections::HashMap<String, u32> =
        serde_json::from_str(&text).expect("a name -> id map");
    for &(id, name) in classes::CLASSES {
        assert_eq!(map.get(name), Some(&u32::from(id)), "{name}");
    }
}

#[test]
fn a_default_phantom_generates_quickly() {
    let started = std::time::Instant::now();
    let p = generate(&PhantomConfig::ct(42));
    let elapsed = started.elapsed();
    eprintln!(
        "generated 160 x 160 x 96 in {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
    assert_eq!(p.values.len(), 160 * 160 * 96);
    // Generous for a loaded machine; about 0.3 s in a debug build.
    assert!(elapsed.as_secs_f64() < 5.0, "{elapsed:?}");
    // The same voxels as an engine volume, without files.
    let v = p.to_volume();
    assert_eq!(v.dims, p.dims);
    let idx = v.index(80, 70, 40);
    assert_eq!(v.modality_value(idx), f64::from(p.value(80, 70, 40)));
}

/// A wider sweep of seeds (`cargo test -p groundglass-phantom -- --ignored`): every class present
/// and on its side, and the smallest voxel count of each class printed.
#[test]
#[ignore]
fn many_seeds_stay_complete_and_lateral() {
    let mut smallest = [usize::MAX; 256];
    for seed in 0..200u64 {
        let mut config = PhantomConfig::ct(seed);
        config.noise = 0.0;
        let p = generate(&config);
        let c = Centroids::of(&p);
        for &(id, name) in classes::CLASSES {
            let n = c.1[id as usize];
            assert!(n >= 100, "seed {seed}: {name} has {n} voxels");
            smallest[id as usize] = smallest[id as usize].min(n);
        }
        let x = |l: u8| c.get(l)[0];
        assert!(
            x(LIVER) < 0.0 && x(SPLEEN) > 0.0 && x(GALLBLADDER) < 0.0,
            "seed {seed}"
        );
        assert!(x(KIDNEY_RIGHT) < 0.0 && x(KIDNEY_LEFT) > 0.0 && x(STOMACH) > 0.0);
        for l in [
            LUNG_UPPER_LOBE_RIGHT,
            LUNG_MIDDLE_LOBE_RIGHT,
            LUNG_LOWER_LOBE_RIGHT,
        ] {
            assert!(x(l) < 0.0, "seed {seed}");
        }
        for l in [LUNG_UPPER_LOBE_LEFT, LUNG_LOWER_LOBE_LEFT] {
            assert!(x(l) > 0.0, "seed {seed}");
        }
    }
    for &(id, name) in classes::CLASSES {
        eprintln!("{name}: at least {} voxels", smallest[id as usize]);
    }
}

//! Writes one phantom: `cargo run -p groundglass-phantom --example phantom -- SEED OUT_DIR
//! [mr] [lesions] [contrast]` gives OUT_DIR/dicom/slice_*.dcm, OUT_DIR/image.nii.gz and
//! OUT_DIR/labels.nii.gz, and prints the class centroids (LPS mm) and the lesions as JSON lines.

use std::path::PathBuf;

use groundglass_phantom::{classes, generate, PhantomConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(seed), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: phantom SEED OUT_DIR [mr] [lesions] [contrast]".into());
    };
    let seed: u64 = seed.parse()?;
    let has = |flag: &str| args.iter().skip(2).any(|a| a == flag);
    let mut config = if has("mr") {
        PhantomConfig::mr(seed)
    } else {
        PhantomConfig::ct(seed)
    };
    config.lesions = has("lesions");
    config.contrast = has("contrast");
    let started = std::time::Instant::now();
    let phantom = generate(&config);
    eprintln!(
        "generated in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let out = PathBuf::from(out);
    groundglass_phantom::write_dicom_series(&phantom, &out.join("dicom"))?;
    groundglass_phantom::write_nifti(&phantom, &out.join("image.nii.gz"))?;
    groundglass_phantom::write_label_nifti(&phantom, &out.join("labels.nii.gz"))?;
    let counts = phantom.labels.counts();
    for &(id, name) in classes::CLASSES {
        let c = phantom
            .centroid_lps(id)
            .map(|p| p.map(|v| (v * 10.0).round() / 10.0));
        println!(
            "{{\"id\": {id}, \"name\": \"{name}\", \"voxels\": {}, \"centroid_lps\": {c:?}}}",
            counts[id as usize]
        );
    }
    for l in &phantom.lesions {
        println!("{l:?}");
    }
    Ok(())
}

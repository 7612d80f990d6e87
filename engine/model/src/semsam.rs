//! MIS-SemSam (arXiv 2603.14579), a training-free decoding rule for spatial terms. Offline, each
//! content token gets its K nearest neighbours by cosine similarity in the token-embedding matrix
//! (special, `<loc>`, `<seg>` and image tokens excluded). At each step the top-M / top-p candidates
//! are taken; if any is a non-content token the step decodes as usual, otherwise each candidate c is
//! scored as the sum over its neighbours k of max(0, sim(c, k)) * p(k), and the best score wins.
//! The paper publishes neither K, M nor p; the defaults here are a starting point. The candidate
//! itself counts as its own nearest neighbour (similarity 1).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SemSamConfig {
    pub k: usize,
    pub top_m: usize,
    pub top_p: f32,
}

impl Default for SemSamConfig {
    fn default() -> Self {
        SemSamConfig {
            k: 8,
            top_m: 10,
            top_p: 0.9,
        }
    }
}

/// Nearest neighbours of every content token (empty for other tokens).
#[derive(Clone, Debug, PartialEq)]
pub struct NeighbourTable {
    pub k: usize,
    /// Per token: (neighbour id, cosine similarity), most similar first, itself included.
    pub neighbours: Vec<Vec<(u32, f32)>>,
}

/// How far a table build has come.
pub struct BuildControl<'a> {
    /// Called with the fraction of rows done (0..=1), at most once per block.
    pub progress: &'a (dyn Fn(f32) + Sync),
}

impl BuildControl<'_> {
    pub const SILENT: BuildControl<'static> = BuildControl { progress: &|_| {} };
}

/// Rows of similarities computed at once: the block of 256 rows against a 257k vocabulary is
/// 263 MB of f32.
const BLOCK_ROWS: usize = 256;

/// The content rows of the embedding, each scaled to unit length, row-major (rows, hidden), and a
/// fingerprint of them (CRC-32 of their bytes with the content ids), so a cached table is known
/// to belong to exactly these embeddings.
struct UnitRows {
    ids: Vec<u32>,
    hidden: usize,
    rows: Vec<f32>,
    fingerprint: u32,
}

fn unit_rows(embeddings: &Tensor, content: &[bool]) -> Result<UnitRows> {
    let e = embeddings.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let (vocab, hidden) = e.dims2()?;
    let ids: Vec<u32> = (0..content.len().min(vocab) as u32)
        .filter(|&t| content[t as usize])
        .collect();
    let picked = e.index_select(&Tensor::new(ids.as_slice(), &Device::Cpu)?, 0)?;
    drop(e);
    let mut rows = picked.flatten_all()?.to_vec1::<f32>()?;
    drop(picked);
    use rayon::prelude::*;
    rows.par_chunks_mut(hidden.max(1)).for_each(|r| {
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        r.iter_mut().for_each(|v| *v /= norm);
    });
    let mut crc = crc32fast::Hasher::new();
    for id in &ids {
        crc.update(&id.to_le_bytes());
    }
    // Little-endian bytes, a chunk at a time (no second full copy).
    for chunk in rows.chunks(1 << 16) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
        crc.update(&bytes);
    }
    Ok(UnitRows {
        ids,
        hidden,
        rows,
        fingerprint: crc.finalize(),
    })
}

/// `c (m, n) = a (m, k) · b (n, k)ᵀ` into `c` (one buffer reused across the blocks), through the
/// AVX-512 kernel where the CPU has it.
fn similarities(
    a: &[f32],
    m: usize,
    k: usize,
    b: &[f32],
    n: usize,
    c: &mut Vec<f32>,
) -> Result<()> {
    c.resize(m * n, 0.0);
    if crate::kernels::matmul::available() {
        crate::kernels::matmul::matmul_wt(a, m, k, b, n, c);
        return Ok(());
    }
    let at = Tensor::from_slice(a, (m, k), &Device::Cpu)?;
    let bt = Tensor::from_slice(b, (n, k), &Device::Cpu)?;
    *c = at.matmul(&bt.t()?)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(())
}

/// The `k` largest of `row` with their ids, the token itself first (similarity 1).
fn top_k(token: u32, ids: &[u32], row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = vec![(token, 1.0)];
    let want = k.max(1);
    let mut floor = f32::NEG_INFINITY;
    for (&id, &v) in ids.iter().zip(row) {
        if id == token || (best.len() == want && v <= floor) {
            continue;
        }
        // Insert after the token itself, keeping the rest in descending order.
        let at = 1 + best[1..].partition_point(|(_, s)| *s >= v);
        best.insert(at, (id, v));
        best.truncate(want);
        if best.len() == want {
            floor = best[want - 1].1;
        }
    }
    best
}

impl NeighbourTable {
    /// Computes the table from the embedding matrix (vocab, hidden); `content[t]` marks content
    /// tokens. Blocks of rows against every content row, so memory stays at the unit rows plus
    /// one block of similarities.
    pub fn build(embeddings: &Tensor, content: &[bool], k: usize) -> Result<Self> {
        let unit = unit_rows(embeddings, content)?;
        Self::from_unit_rows(&unit, content.len(), k, &BuildControl::SILENT, usize::MAX)
    }

    /// The table for the first `rows` content tokens only (the others get none): what a
    /// benchmark times, since the build is linear in the rows.
    pub fn build_rows(
        embeddings: &Tensor,
        content: &[bool],
        k: usize,
        rows: usize,
    ) -> Result<Self> {
        let unit = unit_rows(embeddings, content)?;
        Self::from_unit_rows(&unit, content.len(), k, &BuildControl::SILENT, rows)
    }

    fn from_unit_rows(
        unit: &UnitRows,
        vocab: usize,
        k: usize,
        control: &BuildControl,
        rows: usize,
    ) -> Result<Self> {
        use rayon::prelude::*;
        let (n, h) = (unit.ids.len(), unit.hidden);
        let mut neighbours = vec![Vec::new(); vocab];
        let mut done = 0;
        let mut sims = Vec::new();
        for block in unit.ids[..rows.min(n)].chunks(BLOCK_ROWS) {
            let m = block.len();
            let a = &unit.rows[done * h..(done + m) * h];
            similarities(a, m, h, &unit.rows, n, &mut sims)?;
            let found: Vec<Vec<(u32, f32)>> = block
                .par_iter()
                .zip(sims.par_chunks(n))
                .map(|(&token, row)| top_k(token, &unit.ids, row, k))
                .collect();
            for (&token, list) in block.iter().zip(found) {
                neighbours[token as usize] = list;
            }
            done += m;
            (control.progress)(done as f32 / n.max(1) as f32);
        }
        Ok(NeighbourTable { k, neighbours })
    }

    /// Loads the table cached at `path` when it was built from exactly these embeddings (same
    /// fingerprint), or builds and saves it there.
    pub fn cached(path: &Path, embeddings: &Tensor, content: &[bool], k: usize) -> Result<Self> {
        Self::cached_with(path, embeddings, content, k, &BuildControl::SILENT)
    }

    /// As [`cached`](Self::cached), reporting the build's progress.
    pub fn cached_with(
        path: &Path,
        embeddings: &Tensor,
        content: &[bool],
        k: usize,
        control: &BuildControl,
    ) -> Result<Self> {
        let unit = unit_rows(embeddings, content)?;
        if let Ok(t) = Self::load(path, content.len(), k, unit.fingerprint) {
            (control.progress)(1.0);
            return Ok(t);
        }
        let table = Self::from_unit_rows(&unit, content.len(), k, control, usize::MAX)?;
        // A read-only model folder only costs the rebuild next time.
        let _ = table.save(path, unit.fingerprint);
        Ok(table)
    }

    fn save(&self, path: &Path, fingerprint: u32) -> Result<()> {
        let v = self.neighbours.len();
        let mut ids = vec![u32::MAX; v * self.k];
        let mut sims = vec![0f32; v * self.k];
        for (t, n) in self.neighbours.iter().enumerate() {
            for (i, (id, s)) in n.iter().enumerate().take(self.k) {
                ids[t * self.k + i] = *id;
                sims[t * self.k + i] = *s;
            }
        }
        let ids = Tensor::from_vec(ids, (v, self.k), &Device::Cpu)?;
        let sims = Tensor::from_vec(sims, (v, self.k), &Device::Cpu)?;
        let fingerprint = Tensor::new(&[fingerprint], &Device::Cpu)?;
        let tmp = path.with_extension("tmp");
        candle_core::safetensors::save(
            &[("ids", ids), ("sims", sims), ("fingerprint", fingerprint)]
                .into_iter()
                .collect(),
            &tmp,
        )?;
        std::fs::rename(&tmp, path).map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e,
        })
    }

    fn load(path: &Path, vocab: usize, k: usize, fingerprint: u32) -> Result<Self> {
        let t = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            ModelError::Weights {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        let bad = || ModelError::Weights {
            path: path.to_path_buf(),
            message: "not a neighbour table for this model".into(),
        };
        let stored = t.get("fingerprint").ok_or_else(bad)?.to_vec1::<u32>()?;
        if stored != [fingerprint] {
            return Err(bad());
        }
        let ids = t.get("ids").ok_or_else(bad)?.to_vec2::<u32>()?;
        let sims = t.get("sims").ok_or_else(bad)?.to_vec2::<f32>()?;
        if ids.len() != vocab || ids.first().map(|r| r.len()) != Some(k) {
            return Err(bad());
        }
        let neighbours = ids
            .into_iter()
            .zip(sims)
            .map(|(i, s)| {
                i.into_iter()
                    .zip(s)
                    .filter(|(id, _)| *id != u32::MAX)
                    .collect()
            })
            .collect();
        Ok(NeighbourTable { k, neighbours })
    }

    /// Where the table for a model folder is cached.
    pub fn cache_path(model_dir: &Path, k: usize) -> PathBuf {
        model_dir.join(format!("semsam_neighbours_k{k}.safetensors"))
    }

    /// The SemSam choice for one step's logits.
    pub fn choose(&self, logits: &[f32], config: &SemSamConfig) -> u32 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let p: Vec<f32> = exp.iter().map(|e| e / sum).collect();
        let mut order: Vec<u32> = (0..p.len() as u32).collect();
        order.sort_by(|a, b| p[*b as usize].total_cmp(&p[*a as usize]));
        let mut candidates = Vec::new();
        let mut mass = 0.0;
        for &t in order.iter().take(config.top_m.max(1)) {
            candidates.push(t);
            mass += p[t as usize];
            if mass >= config.top_p {
                break;
            }
        }
        let greedy = order[0];
        if candidates.iter().any(|&c| {
            self.neighbours
                .get(c as usize)
                .map(|n| n.is_empty())
                .unwrap_or(true)
        }) {
            return greedy;
        }
        let score = |c: u32| -> f32 {
            self.neighbours[c as usize]
                .iter()
                .map(|(k, s)| s.max(0.0) * p[*k as usize])
                .sum()
        };
        candidates
            .into_iter()
            .max_by(|a, b| score(*a).total_cmp(&score(*b)))
            .unwrap_or(greedy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-checked: "right" is the most likely token (0.35) but "left" and its synonym "links"
    /// together carry more mass; SemSam picks "left", greedy "right".
    #[test]
    fn semantic_mass_beats_the_single_most_likely_token() {
        // 0 special, 1 left, 2 links (close to left), 3 right, 4 rechts (close to right), 5 liver.
        let e = Tensor::new(
            &[
                [0.0f32, 0.0, 1.0],
                [1.0, 0.1, 0.0],
                [0.95, 0.2, 0.0],
                [-1.0, 0.1, 0.0],
                [-0.9, 0.3, 0.0],
                [0.0, 1.0, 0.0],
            ],
            &Device::Cpu,
        )
        .expect("tensor");
        let content = [false, true, true, true, true, true];
        let table = NeighbourTable::build(&e, &content, 2).expect("table");
        assert_eq!(table.neighbours[1][0].0, 1, "itself first");
        assert_eq!(table.neighbours[1][1].0, 2, "then links");
        assert!(table.neighbours[0].is_empty());
        let p = [0.0f32, 0.30, 0.25, 0.35, 0.05, 0.05];
        let logits: Vec<f32> = p
            .iter()
            .map(|x| if *x > 0.0 { x.ln() } else { -30.0 })
            .collect();
        let config = SemSamConfig {
            k: 2,
            top_m: 4,
            top_p: 0.99,
        };
        assert_eq!(table.choose(&logits, &config), 1);
        // With only the top candidate allowed, SemSam is greedy.
        assert_eq!(
            table.choose(&logits, &SemSamConfig { top_m: 1, ..config }),
            3
        );
        // A special token among the candidates: decode as usual.
        let mut special = logits.clone();
        special[0] = (0.2f32).ln();
        assert_eq!(table.choose(&special, &config), 3);
    }

    #[test]
    fn the_table_round_trips_through_its_cache_file() {
        let e =
            Tensor::new(&[[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0]], &Device::Cpu).expect("tensor");
        let content = [true, true, false];
        let path =
            std::env::temp_dir().join(format!("gg-semsam-{}.safetensors", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let built = NeighbourTable::cached(&path, &e, &content, 2).expect("build");
        assert!(path.exists());
        let loaded = NeighbourTable::cached(&path, &e, &content, 2).expect("load");
        assert_eq!(built, loaded);
        // Other embeddings (a fine-tuned model in the same folder): the cache is not taken.
        let changed =
            Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0], [0.9, 0.1]], &Device::Cpu).expect("tensor");
        let content = [true, true, true];
        let rebuilt = NeighbourTable::cached(&path, &changed, &content, 2).expect("rebuild");
        assert_eq!(
            rebuilt.neighbours[0][1].0, 2,
            "row 0's neighbour is now row 2"
        );
        assert_eq!(
            rebuilt,
            NeighbourTable::build(&changed, &content, 2).expect("build")
        );
    }

    /// The blocked build with its top-k scan equals a plain sort of every similarity, over more
    /// rows than one block and a ragged last block.
    #[test]
    fn the_blocked_build_equals_sorting_every_similarity() {
        let (vocab, hidden, k) = (300usize, 20usize, 5usize);
        let mut seed = 7u64;
        let data: Vec<f32> = (0..vocab * hidden)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let e = Tensor::from_vec(data.clone(), (vocab, hidden), &Device::Cpu).expect("tensor");
        let content: Vec<bool> = (0..vocab).map(|t| t % 7 != 0).collect();
        let table = NeighbourTable::build(&e, &content, k).expect("build");
        let unit = |t: usize| {
            let r = &data[t * hidden..(t + 1) * hidden];
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            r.iter().map(|v| v / n).collect::<Vec<f32>>()
        };
        for t in (0..vocab).filter(|&t| content[t]) {
            let u = unit(t);
            let mut all: Vec<(u32, f32)> = (0..vocab)
                .filter(|&o| content[o] && o != t)
                .map(|o| (o as u32, unit(o).iter().zip(&u).map(|(a, b)| a * b).sum()))
                .collect();
            all.sort_by(|a, b| b.1.total_cmp(&a.1));
            let got = &table.neighbours[t];
            assert_eq!(got[0].0, t as u32);
            for (i, (id, s)) in got[1..].iter().enumerate() {
                assert!(
                    (s - all[i].1).abs() < 1e-5,
                    "{t}: {got:?} vs {:?}",
                    &all[..k]
                );
                assert!(*id == all[i].0 || (all[i].1 - s).abs() < 1e-6);
            }
        }
        assert!(table.neighbours[0].is_empty());
    }
}

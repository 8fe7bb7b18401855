//! Bulk routes: streamed multipart upload, jobs, items, report, CSV downloads,
//! progress events, and the operator actions.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use super::accounts::{bad_param, cursor, limit};
use super::bodies::{Empty, ReasonBody, ResolveBody};
use super::request::Ctx;
use super::{actor, principal, response};
use crate::bulk::files;
use crate::bulk::model::{Item, ItemStatus, Job, JobStatus};
use crate::bulk::read::{self, csv_chunk, csv_header, download_columns, errors_from_file, item_view, job_view};
use crate::bulk::upload::{StagedFile, UploadFields};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use crate::store::TreeId;

/// Form fields other than the file are short.
const FIELD_BYTES_MAX: u64 = 4096;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    #[serde(default)]
    acknowledge_duplicates: bool,
}

fn job_id(ctx: &Ctx) -> Result<Uuid, Error> {
    ctx.uuid_param(0)
}

fn too_large(limit: u64) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        "FILE_TOO_LARGE",
        format!("uploads are limited to {} MiB (SYSGP_BULK_FILE_MAX_MB)", limit / (1024 * 1024)),
    )
    .with_details(json!({ "limit_bytes": limit }))
}

fn multipart_error(e: multer::Error, limit: u64) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => too_large(limit),
        other => Error::invalid("MULTIPART_FORMAT", format!("the upload is not valid multipart/form-data: {other}")),
    }
}

fn flag(text: &str, field: &str) -> Result<bool, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::invalid_field("INVALID_FIELD", field, format!("{field} must be true or false"))),
    }
}

/// `POST /api/v1/bulk/upload/` (multipart: `file`, `source_msisdn`, `skip_invalid`,
/// `allow_duplicate`, `reason`, `note`): 202 with the job once the file is durable.
pub async fn upload(ctx: &mut Ctx) -> Result<Response, Error> {
    let content_type = ctx.header("content-type").unwrap_or("").to_owned();
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(Error::new(
            ErrorKind::UnsupportedMedia,
            "UNSUPPORTED_MEDIA_TYPE",
            "upload the file as multipart/form-data",
        ));
    }
    let boundary = multer::parse_boundary(&content_type)
        .map_err(|_| Error::invalid("MULTIPART_FORMAT", "the multipart boundary is missing"))?;
    let engine = ctx.state.engine.clone();
    let limit = engine.limits.bulk.file_bytes_max;
    let body = ctx.body.take().ok_or_else(|| Error::invalid("BODY_READ", "no body"))?;
    let size = multer::SizeLimit::new()
        .whole_stream(limit + 64 * 1024)
        .per_field(limit)
        .for_field("source_msisdn", FIELD_BYTES_MAX);
    let mut form = multer::Multipart::with_constraints(body, boundary, multer::Constraints::new().size_limit(size));
    let mut fields = UploadFields::default();
    let mut staged: Option<StagedFile> = None;
    let result = async {
        while let Some(field) = form.next_field().await.map_err(|e| multipart_error(e, limit))? {
            let name = field.name().unwrap_or("").to_owned();
            if name == "file" {
                if staged.is_some() {
                    return Err(Error::invalid_field("DUPLICATE_FIELD", "file", "send one file per upload"));
                }
                staged = Some(stage(&engine, field, limit).await?);
                continue;
            }
            let text = field.text().await.map_err(|e| multipart_error(e, limit))?;
            if text.len() as u64 > FIELD_BYTES_MAX {
                return Err(Error::invalid_field(
                    "FIELD_TOO_LONG",
                    &name,
                    format!("{name} is limited to {FIELD_BYTES_MAX} bytes"),
                ));
            }
            match name.as_str() {
                "source_msisdn" => fields.source_msisdn = Some(text),
                "skip_invalid" => fields.skip_invalid = flag(&text, "skip_invalid")?,
                "allow_duplicate" => fields.allow_duplicate = flag(&text, "allow_duplicate")?,
                "reason" => fields.reason = Some(text).filter(|t| !t.trim().is_empty()),
                "note" => fields.note = Some(text),
                other => {
                    return Err(Error::invalid_field("UNKNOWN_FIELD", other, format!("unknown form field {other:?}")))
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(s) = &staged {
            let _ = std::fs::remove_file(&s.path);
        }
        return Err(e);
    }
    let file = staged.ok_or_else(|| Error::invalid_field("MISSING_FIELD", "file", "the form has no file field"))?;
    let actor = actor(ctx)?;
    let job = tokio::spawn(async move { engine.accept_upload(&actor, file, fields).await })
        .await
        .map_err(Error::internal)??;
    Ok(response::json(StatusCode::ACCEPTED, &job_view(&job, 0.0)))
}

/// Streams one multipart field to `<data>/bulk/incoming/`, hashing it, then fsyncs it.
async fn stage(engine: &Arc<Engine>, mut field: multer::Field<'_>, limit: u64) -> Result<StagedFile, Error> {
    let dir = files::incoming_dir(&engine.store);
    tokio::fs::create_dir_all(&dir).await.map_err(Error::internal)?;
    let path = dir.join(format!("{}.part", Uuid::new_v4()));
    let file_name = field.file_name().unwrap_or("upload.csv").to_owned();
    let mut out = tokio::fs::File::create(&path).await.map_err(Error::internal)?;
    let mut sha = Sha256::new();
    let mut bytes = 0u64;
    let copied = async {
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
            bytes += chunk.len() as u64;
            if bytes > limit {
                return Err(too_large(limit));
            }
            sha.update(&chunk);
            out.write_all(&chunk).await.map_err(Error::internal)?;
        }
        out.sync_all().await.map_err(Error::internal)
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&path).await;
        return Err(e);
    }
    Ok(StagedFile { path, sha256: sha.finalize().into(), bytes, file_name })
}

/// `GET /api/v1/bulk/jobs/?status=&limit=&cursor=`, newest first.
pub async fn list(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["status", "limit", "cursor"])?;
    let status = params
        .get("status")
        .map(|s| JobStatus::parse(s).ok_or_else(|| bad_param("status", "a job status such as PROCESSING")))
        .transpose()?;
    let engine = &ctx.state.engine;
    let page =
        engine.store.list_by_order(TreeId::JobsOrder, TreeId::Jobs, limit(&params)?, cursor(&params)?, |j: &Job| {
            status.is_none_or(|s| s == j.status)
        })?;
    let items: Vec<_> = page.items.iter().map(|j| job_view(j, engine.bulk.rate(j))).collect();
    Ok(response::json(StatusCode::OK, &json!({ "items": items, "next_cursor": page.next_cursor })))
}

/// `GET /api/v1/bulk/jobs/{id}/`.
pub async fn get(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let engine = &ctx.state.engine;
    let job = engine.job(job_id(ctx)?)?;
    Ok(response::json(StatusCode::OK, &job_view(&job, engine.bulk.rate(&job))))
}

/// `GET …/items/?status=&limit=&cursor=`, in file order (the cursor is a line).
pub async fn items(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["status", "limit", "cursor"])?;
    let status = params
        .get("status")
        .map(|s| ItemStatus::parse(s).ok_or_else(|| bad_param("status", "an item status such as FAILED")))
        .transpose()?;
    let after = params
        .get("cursor")
        .map(|c| c.parse::<u32>().map_err(|_| bad_param("cursor", "a next_cursor value from an earlier page")))
        .transpose()?
        .unwrap_or(0);
    let limit = limit(&params)?;
    let engine = &ctx.state.engine;
    let job = engine.job(job_id(ctx)?)?;
    let mut found: Vec<Item> =
        engine.store.items(job.id, after, limit + 1, |i: &Item| status.is_none_or(|s| s == i.status))?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next = if more { found.last().map(|i| i.line.to_string()) } else { None };
    let items: Vec<_> = found.iter().map(|i| item_view(i, &job)).collect();
    Ok(response::json(StatusCode::OK, &json!({ "items": items, "next_cursor": next })))
}

/// `GET …/report/?limit=&cursor=`: validation problems by line and field.
pub async fn report(ctx: &mut Ctx) -> Result<Response, Error> {
    let params = ctx.query_params(&["limit", "cursor"])?;
    let offset = params
        .get("cursor")
        .map(|c| c.parse::<usize>().map_err(|_| bad_param("cursor", "a next_cursor value from an earlier page")))
        .transpose()?
        .unwrap_or(0);
    let limit = limit(&params)?;
    let engine = ctx.state.engine.clone();
    let job = engine.job(job_id(ctx)?)?;
    let (items, next) = tokio::task::spawn_blocking(move || read::report_page(&engine, job.id, offset, limit))
        .await
        .map_err(Error::internal)??;
    Ok(response::json(
        StatusCode::OK,
        &json!({ "items": items, "next_cursor": next.map(|n| n.to_string()), "job_status": job.status.as_str() }),
    ))
}

/// `GET …/results.csv` and `…/errors.csv`, rendered a batch of items at a time.
pub async fn download(ctx: &mut Ctx, errors: bool) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let engine = ctx.state.engine.clone();
    let mut job = engine.job(job_id(ctx)?)?;
    if job.columns.is_empty() {
        // Validation stopped before recording the file's columns: read its header again.
        let (e2, j2) = (engine.clone(), job.clone());
        job.columns = tokio::task::spawn_blocking(move || download_columns(&e2, &j2)).await.map_err(Error::internal)?;
    }
    let name = if errors { "errors.csv" } else { "results.csv" };
    let no_items = job.valid_count() + job.counts[ItemStatus::Invalid.index()] == 0;
    let mut reply = if errors && no_items && job.status == JobStatus::Failed {
        let bytes =
            tokio::task::spawn_blocking(move || errors_from_file(&engine, &job)).await.map_err(Error::internal)??;
        Response::new(bytes.into())
    } else {
        let header = csv_header(&job, errors)?;
        let state = (engine, job, Some(0u32), Some(header));
        let stream = futures_util::stream::unfold(state, move |(engine, job, after, header)| async move {
            if let Some(h) = header {
                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(h)), (engine, job, after, None)));
            }
            let after = after?;
            let (e2, j2) = (engine.clone(), job.clone());
            let chunk = tokio::task::spawn_blocking(move || csv_chunk(&e2, &j2, after, errors)).await;
            match chunk {
                Ok(Ok(Some((bytes, last)))) => Some((Ok(Bytes::from(bytes)), (engine, job, Some(last), None))),
                Ok(Ok(None)) => None,
                Ok(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), (engine, job, None, None))),
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), (engine, job, None, None))),
            }
        });
        warp::reply::stream(stream).into_response()
    };
    let h = reply.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(reply)
}

/// `GET …/events`: server-sent progress events, one a second while the job runs, then
/// the final state.
pub async fn events(ctx: &mut Ctx) -> Result<Response, Error> {
    ctx.query_params(&[])?;
    let engine = ctx.state.engine.clone();
    let id = engine.job(job_id(ctx)?)?.id;
    let stream = futures_util::stream::unfold((engine, id, false, true), |(engine, id, done, first)| async move {
        if done {
            return None;
        }
        if !first {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let job = engine.job(id).ok()?;
        let finished = job.status.is_final()
            || matches!(job.status, JobStatus::AwaitingApproval | JobStatus::Paused | JobStatus::Failed);
        let event = format!("event: progress\ndata: {}\n\n", job_view(&job, engine.bulk.rate(&job)));
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(event)), (engine, id, finished, false)))
    });
    let mut reply = warp::reply::stream(stream).into_response();
    let h = reply.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(reply)
}

/// `POST …/approve|reject|pause|resume|cancel|retry/`.
pub async fn action(ctx: &mut Ctx, what: &str) -> Result<Response, Error> {
    let id = job_id(ctx)?;
    let engine = ctx.state.engine.clone();
    let p = principal(ctx)?.clone();
    let job = match what {
        "approve" | "retry" => {
            let body: ApproveBody = ctx.json_or_empty().await?;
            let (a, ack) = (p.actor.clone(), body.acknowledge_duplicates);
            if what == "approve" {
                tokio::spawn(async move { engine.approve_job(&a, id, ack).await }).await
            } else {
                tokio::spawn(async move { engine.retry_job(&a, id, ack).await }).await
            }
            .map_err(Error::internal)??
        }
        "reject" => {
            let body: ReasonBody = ctx.json().await?;
            engine.reject_job(&p.actor, id, body.reason).await?
        }
        _ => {
            let _: Empty = ctx.json_or_empty().await?;
            match what {
                "pause" => engine.pause_job(&p.actor, id).await?,
                "resume" => engine.resume_job(&p.actor, id).await?,
                _ => engine.cancel_job(&p.actor, p.role, id).await?,
            }
        }
    };
    Ok(response::json(StatusCode::OK, &job_view(&job, ctx.state.engine.bulk.rate(&job))))
}

/// `POST …/items/{line}/resolve/`.
pub async fn resolve_item(ctx: &mut Ctx) -> Result<Response, Error> {
    let id = job_id(ctx)?;
    let line: u32 = ctx.param(1).parse().map_err(|_| Error::not_found("ITEM_NOT_FOUND", "no such line"))?;
    let req = ctx.json::<ResolveBody>().await?.into_request()?;
    let engine = ctx.state.engine.clone();
    let a = actor(ctx)?;
    let t =
        tokio::spawn(async move { engine.resolve_item(&a, id, line, req).await }).await.map_err(Error::internal)??;
    Ok(response::json(StatusCode::OK, &super::views::transfer(&t)))
}

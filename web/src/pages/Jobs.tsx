import { useState } from "preact/hooks";
import { api, call, plain, type S } from "../api/client";
import { Action, LoadMore, PageSize, useJobs, usePageSize, usePaged, View, when } from "../ui";

type Job = S["JobView"];
const ACTIVE = ["queued", "running"];

export function JobRow({ job }: { job: Job }) {
  const cancel = () => call(() => api.POST("/api/v1/jobs/{id}/cancel", { params: { path: { id: job.id } } }));
  const subject = job.subject;
  return (
    <tr data-testid="job" data-id={job.id} data-status={job.status}>
      <td>{job.kind}{subject && <><br /><a href={subject.kind === "video" ? `#/video/${subject.id}` : undefined}><small>{subject.title || subject.id.slice(0, 8)}</small></a></>}</td>
      <td><span class={`badge ${job.status}`}>{job.status}</span>{job.cancel_requested && ACTIVE.includes(job.status) && <small> canceling…</small>}</td>
      <td><progress value={job.progress} max={100} /> <span data-testid="job-percent">{Math.round(job.progress)} %</span> <small>{job.stage}</small></td>
      <td>{job.error ? <span class="error">{plain(job.error.code, job.error.message)}</span> : <small class="muted">{when(job.updated_at)}</small>}</td>
      <td>{ACTIVE.includes(job.status) && !job.cancel_requested && <Action class="link danger" run={cancel}>Cancel</Action>}</td>
    </tr>
  );
}

const jobsPage = (query: { limit: number }, cursor?: string) => call(() => api.GET("/api/v1/jobs", { params: { query: { ...query, cursor } } }));

/** Every job, newest first, a page at a time ("Load more"; the page size is remembered); each moves live, and a job
 * that is not on a loaded page (a new one) is listed first when it changes. */
export function Jobs() {
  const size = usePageSize("jobs");
  const jobs = usePaged({ limit: size[0] }, jobsPage);
  const [live, setLive] = useState(new Map<string, Job>());
  useJobs((job) => setLive((m) => new Map(m).set(job.id, job)));
  const merged = (items: Job[]) => {
    const known = new Set(items.map((j) => j.id));
    const fresh = [...live.values()].filter((j) => !known.has(j.id));
    return [...fresh, ...items.map((j) => live.get(j.id) ?? j)];
  };
  return (
    <section>
      <div class="bar">
        <h1>Jobs</h1>
        <PageSize size={size} label="Jobs per page" />
      </div>
      <View of={jobs} empty={(d) => merged(d.items).length === 0} emptyText="No jobs yet: add a video.">
        {(d) => (
          <>
            <table class="jobs">
              <thead><tr><th>Job</th><th>Status</th><th>Progress</th><th>Details</th><th /></tr></thead>
              <tbody>{merged(d.items).map((j) => <JobRow key={j.id} job={j} />)}</tbody>
            </table>
            <LoadMore of={jobs} />
          </>
        )}
      </View>
    </section>
  );
}

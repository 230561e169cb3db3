// Live progress of a job: the job page follows its server-sent events and updates itself.
// Without JavaScript the page refreshes itself instead (its <noscript> meta refresh).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const job = document.querySelector("[data-job-events]");
  if (!job) return;
  const status = document.getElementById("job-status");
  const progress = document.getElementById("job-progress");
  const result = document.getElementById("job-result");
  const events = new EventSource(job.dataset.jobEvents);
  const show = (state) => {
    status.textContent = state.status;
    status.className = "state-" + (state.status === "failed" ? "disabled" : state.status === "running" ? "degraded" : "healthy");
    if (state.progress) progress.textContent = JSON.stringify(state.progress, null, 2);
    if (state.error) result.textContent = state.error;
    if (state.result) result.textContent = JSON.stringify(state.result, null, 2);
  };
  events.addEventListener("progress", (event) => show(JSON.parse(event.data)));
  events.addEventListener("done", (event) => {
    show(JSON.parse(event.data));
    events.close();
    window.location.reload();
  });
});

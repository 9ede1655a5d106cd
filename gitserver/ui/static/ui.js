// gitserver web UI: progressive enhancement only; every page works without this file.
"use strict";

function copyFrom(button) {
  const target = document.getElementById(button.dataset.copy);
  if (!target) return;
  const text = target.value || target.textContent;
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => { target.select(); document.execCommand("copy"); done(); });
  } else {
    target.select();
    document.execCommand("copy");
    done();
  }
}

// Timeline: two sliders over the reflog points drive the two pickers (and back);
// clicking a point sets T1 if it is earlier than T2, else T2.
function timeline(form) {
  const from = form.querySelector("select[name=from]");
  const to = form.querySelector("select[name=to]");
  const s1 = document.getElementById("t1");
  const s2 = document.getElementById("t2");
  const points = Array.from(document.querySelectorAll("svg.axis .pt"));
  const paint = () => {
    const a = Number(s1.value), b = Number(s2.value);
    const lo = Math.min(a, b), hi = Math.max(a, b);
    points.forEach((p) => {
      const i = Number(p.dataset.index);
      p.classList.toggle("sel", i === a || i === b);
      p.classList.toggle("in", i > lo && i <= hi);
    });
  };
  const fromSlider = (slider, select) => { select.selectedIndex = Number(slider.value); paint(); };
  const fromSelect = (select, slider) => { slider.value = String(select.selectedIndex); paint(); };
  s1.addEventListener("input", () => fromSlider(s1, from));
  s2.addEventListener("input", () => fromSlider(s2, to));
  from.addEventListener("change", () => fromSelect(from, s1));
  to.addEventListener("change", () => fromSelect(to, s2));
  points.forEach((p) => p.addEventListener("click", () => {
    const i = Number(p.dataset.index);
    if (i < Number(s2.value)) { s1.value = String(i); fromSlider(s1, from); }
    else { s2.value = String(i); fromSlider(s2, to); }
  }));
  paint();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-copy]").forEach((b) => b.addEventListener("click", () => copyFrom(b)));
  const form = document.getElementById("timeline-form");
  if (form) timeline(form);
  document.querySelectorAll("select[data-autosubmit]").forEach((s) => s.addEventListener("change", () => s.form.submit()));
});

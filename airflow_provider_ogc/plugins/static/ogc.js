/* The "OGC jobs" page of airflow-provider-ogc, shown by the Airflow UI in an iframe.
 *
 * Routes (in the fragment): "" = the jobs list, "#job/{dag_id}/{run_id}/{task_id}/{map_index}" = one job.
 * Every API call carries the Airflow UI's JWT as "Authorization: Bearer" (Airflow 3.1 keeps it in
 * localStorage["token"]; the "_token" cookie when readable) and the cookies (Airflow 3.3 reads "_token").
 * Everything from the server is put in the page with textContent, never as HTML.
 */
(function () {
  "use strict";

  var POLL_MS = 4000;
  var pageBase = new URL(".", window.location.href); // .../ogc/
  var airflowBase = new URL("..", pageBase); // the Airflow UI's root
  var state = { view: null, timer: null, map: null, layers: null, jobKey: null, itemsLoadedFor: null, blobs: [] };

  function $(id) { return document.getElementById(id); }

  function token() {
    var value = null;
    try { value = window.localStorage.getItem("token"); } catch (e) { value = null; }
    if (!value) {
      var match = document.cookie.match(/(?:^|;\s*)_token=([^;]+)/);
      value = match ? decodeURIComponent(match[1]) : null;
    }
    return value;
  }

  function api(path, asBlob) {
    var headers = { Accept: asBlob ? "image/png" : "application/json" };
    var t = token();
    if (t) headers.Authorization = "Bearer " + t;
    return fetch(new URL(path, pageBase), { headers: headers, credentials: "same-origin" }).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (text) {
          var detail = text;
          try { detail = JSON.parse(text).detail || text; } catch (e) { /* not JSON */ }
          var err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
          err.status = r.status;
          throw err;
        });
      }
      return asBlob ? r.blob().then(function (b) { return { blob: b, headers: r.headers }; }) : r.json();
    });
  }

  function showError(err) {
    var box = $("ogc-error");
    box.className = "ogc-error";
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    var status = err.status || 0;
    box.classList.add("ogc-error-" + (status || "network"));
    if (status === 401) box.textContent = "Not signed in to Airflow (401): sign in, then reload this page.";
    else if (status === 403) box.textContent = "You may not read this DAG (403): " + err.message;
    else if (status === 404) box.textContent = "Not an OGC API - Processes job (404): " + err.message;
    else box.textContent = "Error" + (status ? " " + status : "") + ": " + err.message;
    box.hidden = false;
  }

  function text(el, value) { el.textContent = value === null || value === undefined || value === "" ? "\u2013" : String(value); return el; }

  function make(tag, className, value) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (value !== undefined) text(el, value);
    return el;
  }

  /* A link to one of Airflow's own pages: opens in the Airflow UI around this iframe. */
  function airflowLink(path, label) {
    var a = make("a", "ogc-airflow-link", label);
    a.href = new URL(path, airflowBase).toString();
    a.target = "_top";
    a.addEventListener("click", function (ev) {
      if (window.top === window) return;
      try {
        var top = window.top;
        var url = new URL(a.href);
        var idx = (top.history.state && typeof top.history.state.idx === "number") ? top.history.state.idx + 1 : 0;
        top.history.pushState({ usr: null, key: Math.random().toString(36).slice(2, 10), idx: idx }, "", url.pathname + url.search);
        top.dispatchEvent(new PopStateEvent("popstate", { state: top.history.state }));
        ev.preventDefault();
      } catch (e) { /* let the browser try the link itself */ }
    });
    return a;
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return null;
    var s = Math.round(seconds);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
  }

  function statusBadge(status) {
    return make("span", "ogc-status-badge ogc-status-" + String(status).replace(/[^a-z]+/gi, "-"), status);
  }

  function progressBar(progress) {
    var wrap = make("span", "ogc-progress");
    var bar = make("span", "ogc-progress-bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    var fill = make("span", "ogc-progress-fill");
    fill.style.display = "block";
    if (typeof progress === "number") {
      bar.setAttribute("aria-valuenow", String(progress));
      fill.style.width = Math.max(0, Math.min(100, progress)) + "%";
    }
    bar.appendChild(fill);
    wrap.appendChild(bar);
    wrap.appendChild(make("span", "ogc-progress-text", typeof progress === "number" ? progress + "%" : ""));
    return wrap;
  }

  function jobHash(job) {
    return "#job/" + [job.dag_id, job.run_id, job.task_id, String(job.map_index)].map(encodeURIComponent).join("/");
  }

  function isActive(status) { return status === "running" || status === "accepted" || status === "queued"; }

  function stamp() { $("ogc-updated").textContent = "updated " + new Date().toLocaleTimeString(); }

  function schedule(fn, active) {
    clearTimeout(state.timer);
    state.timer = setTimeout(function () {
      if (document.hidden) { schedule(fn, active); return; }
      fn();
    }, active ? POLL_MS : POLL_MS * 3);
  }

  /* ------------------------------------------------------------------ the jobs list */

  function fillSelect(select, values) {
    var current = select.value;
    while (select.options.length > 1) select.remove(1);
    values.forEach(function (v) { var o = make("option", null, v); o.value = v; select.appendChild(o); });
    if (current && values.indexOf(current) < 0) { var o = make("option", null, current); o.value = current; select.appendChild(o); }
    select.value = current;
  }

  function loadList() {
    if (state.view !== "list") return;
    var params = new URLSearchParams();
    [["dag_id", "ogc-filter-dag"], ["status", "ogc-filter-status"], ["process_id", "ogc-filter-process"]].forEach(function (p) {
      var v = $(p[1]).value;
      if (v) params.set(p[0], v);
    });
    api("api/jobs" + (params.toString() ? "?" + params : "")).then(function (data) {
      if (state.view !== "list") return;
      showError(null);
      if (!$("ogc-filter-dag").value) fillSelect($("ogc-filter-dag"), data.dag_ids);
      fillSelect($("ogc-filter-status"), data.statuses);
      fillSelect($("ogc-filter-process"), data.process_ids);
      renderRows(data.jobs);
      $("ogc-count").textContent = data.total + " job(s)";
      stamp();
      schedule(loadList, data.jobs.some(function (j) { return isActive(j.status); }));
    }).catch(function (err) {
      showError(err);
      if (err.status !== 401 && err.status !== 403) schedule(loadList, false);
    });
  }

  function renderRows(jobs) {
    var body = $("ogc-jobs-body");
    body.textContent = "";
    $("ogc-empty").hidden = jobs.length > 0;
    jobs.forEach(function (job) {
      var tr = make("tr", "ogc-job");
      tr.dataset.jobKey = job.id;
      tr.dataset.status = job.status;
      tr.dataset.dagId = job.dag_id;
      var dag = make("td", "ogc-dag"); dag.appendChild(airflowLink(job.ui.dag, job.dag_id));
      var run = make("td", "ogc-run"); run.appendChild(airflowLink(job.ui.run, job.run_id));
      var task = make("td", "ogc-task");
      task.appendChild(airflowLink(job.ui.task, job.task_id + (job.map_index >= 0 ? " [" + job.map_index + "]" : "")));
      var status = make("td", "ogc-status"); status.appendChild(statusBadge(job.status));
      var progress = make("td", "ogc-progress-cell"); progress.appendChild(progressBar(job.progress));
      var open = make("td", "ogc-open");
      var a = make("a", "ogc-job-link", "Open"); a.href = jobHash(job); open.appendChild(a);
      tr.appendChild(dag); tr.appendChild(run); tr.appendChild(task);
      tr.appendChild(make("td", "ogc-process", job.process_id));
      tr.appendChild(status); tr.appendChild(progress);
      tr.appendChild(make("td", "ogc-message", job.message || job.error));
      tr.appendChild(make("td", "ogc-duration", formatDuration(job.duration_seconds)));
      tr.appendChild(open);
      body.appendChild(tr);
    });
  }

  /* ------------------------------------------------------------------ one job */

  function jobPath(key) {
    return "api/jobs/" + key.map(encodeURIComponent).join("/");
  }

  function loadJob() {
    if (state.view !== "job") return;
    var key = state.jobKey;
    api(jobPath(key)).then(function (job) {
      if (state.view !== "job" || state.jobKey !== key) return;
      showError(null);
      renderJob(job);
      stamp();
      if (isActive(job.status)) schedule(loadJob, true);
    }).catch(function (err) {
      showError(err);
      $("ogc-job-view").hidden = err.status === 401 || err.status === 403 || err.status === 404;
      if (!err.status || err.status >= 500) schedule(loadJob, false);
    });
  }

  function renderJob(job) {
    $("ogc-job-view").hidden = false;
    var view = $("ogc-job-view");
    view.dataset.status = job.status;
    view.dataset.jobKey = job.id;
    text($("ogc-job-title"), (job.process_id || "OGC job") + " \u2013 " + job.task_id);
    var dag = $("ogc-job-dag"); dag.textContent = ""; dag.appendChild(airflowLink(job.ui.dag, job.dag_id));
    var run = $("ogc-job-run"); run.textContent = ""; run.appendChild(airflowLink(job.ui.run, job.run_id));
    var task = $("ogc-job-task"); task.textContent = "";
    task.appendChild(airflowLink(job.ui.task, job.task_id + (job.map_index >= 0 ? " [" + job.map_index + "]" : "")));
    text($("ogc-job-process"), job.process_id);
    var id = $("ogc-job-id"); id.textContent = "";
    if (job.job_url) { var a = make("a", "ogc-job-url", job.job_id); a.href = job.job_url; a.target = "_blank"; a.rel = "noopener"; id.appendChild(a); }
    else text(id, job.job_id);
    var st = $("ogc-job-status"); st.textContent = ""; st.appendChild(statusBadge(job.status));
    var pr = $("ogc-job-progress"); pr.textContent = ""; pr.appendChild(progressBar(job.progress));
    text($("ogc-job-message"), job.message || job.error);
    text($("ogc-job-duration"), formatDuration(job.duration_seconds));

    var failure = $("ogc-job-failure");
    failure.hidden = !job.failure;
    if (job.failure) {
      text($("ogc-job-failure-message"), job.failure.message);
      $("ogc-job-log-link").href = new URL(job.failure.log, airflowBase).toString();
      var links = $("ogc-job-server-links"); links.textContent = "";
      (job.server_links || []).forEach(function (l) {
        var li = make("li"); var la = make("a", "ogc-server-link", l.title || l.rel || l.href);
        la.href = l.href; la.target = "_blank"; la.rel = "noopener"; li.appendChild(la); links.appendChild(li);
      });
    }

    var loadedKey = job.id + ":" + job.items.length + ":" + job.status;
    if (state.itemsLoadedFor === loadedKey) return;
    state.itemsLoadedFor = loadedKey;
    renderItems(job);
  }

  function ensureMap() {
    if (state.map || typeof L === "undefined") return state.map;
    var map = L.map("ogc-map", { worldCopyJump: true, attributionControl: true, zoomSnap: 0.25 }).setView([20, 0], 2);
    var tiles = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19,
      attribution: "&copy; OpenStreetMap contributors",
      crossOrigin: true
    });
    var failures = 0;
    tiles.on("tileerror", function () {
      failures += 1;
      if (failures >= 4) $("ogc-map").classList.add("ogc-map-offline"); // plain background stays
    });
    tiles.on("tileload", function () { $("ogc-map").classList.add("ogc-map-online"); });
    tiles.addTo(map);
    state.layers = L.featureGroup().addTo(map);
    state.map = map;
    return map;
  }

  function renderLegend(name, legends) {
    var box = $("ogc-legend");
    var entries = legends && legends[name];
    if (!entries) { box.hidden = true; return; }
    box.textContent = "";
    box.dataset.legend = name;
    entries.forEach(function (e) {
      var row = make("div", "ogc-legend-entry");
      var sw = make("span", "ogc-legend-swatch" + (e.color === "transparent" ? " ogc-transparent" : ""));
      if (e.color !== "transparent") sw.style.background = e.color;
      row.appendChild(sw);
      row.appendChild(make("span", "ogc-legend-label", e.label));
      box.appendChild(row);
    });
    box.hidden = false;
  }

  function bboxBounds(bbox) {
    if (!bbox || bbox.length < 4) return null;
    var n = bbox.length === 6 ? 3 : 2;
    return L.latLngBounds([bbox[1], bbox[0]], [bbox[n + 1], bbox[n]]);
  }

  function renderItems(job) {
    var list = $("ogc-items");
    list.textContent = "";
    state.blobs.forEach(function (u) { URL.revokeObjectURL(u); });
    state.blobs = [];
    var note = $("ogc-items-message");
    var messages = [];
    if (!job.items.length) {
      messages.push(job.status === "successful" ? "This job's results hold no STAC items." : "Results appear here when the job has succeeded.");
    }
    (job.item_errors || []).forEach(function (e) { messages.push(e); });
    note.textContent = messages.join(" ");
    note.hidden = messages.length === 0;
    var qlNote = $("ogc-quicklook-message");
    qlNote.hidden = job.quicklooks.available || !job.items.length;
    qlNote.textContent = job.quicklooks.message || "";

    var map = ensureMap();
    if (map) state.layers.clearLayers();
    var legendShown = false;
    job.items.forEach(function (item) {
      var card = make("article", "ogc-item");
      card.dataset.itemIndex = String(item.index);
      card.dataset.itemId = item.id || "";
      card.appendChild(make("h4", "ogc-item-id", item.id || item.href));
      if (item.error) {
        card.classList.add("ogc-item-error");
        card.appendChild(make("p", "ogc-note", item.error));
        list.appendChild(card);
        return;
      }
      var footprint = null;
      if (map && item.geometry) {
        footprint = L.geoJSON(item.geometry, { style: { color: "#f79009", weight: 2, fill: false, className: "ogc-footprint" } });
        footprint.bindTooltip(item.id || "");
        state.layers.addLayer(footprint);
      }
      if (item.quicklook && job.quicklooks.available) {
        var img = make("img", "ogc-quicklook");
        img.alt = "Quick-look of " + (item.data_asset || "the data asset") + " of " + (item.id || "");
        img.dataset.itemIndex = String(item.index);
        card.appendChild(img);
        api(jobPath(state.jobKey) + "/" + item.quicklook, true).then(function (res) {
          var url = URL.createObjectURL(res.blob);
          state.blobs.push(url);
          img.src = url;
          img.dataset.loaded = "true";
          var legend = res.headers.get("X-Legend");
          if (legend && !legendShown) { renderLegend(legend, job.quicklooks.legends); legendShown = true; }
          var bounds = map && bboxBounds(item.bbox);
          if (bounds) {
            var overlay = L.imageOverlay(url, bounds, { opacity: 0.85, className: "ogc-quicklook-overlay" });
            state.layers.addLayer(overlay);
            if (footprint) footprint.bringToFront();
          }
        }).catch(function (err) {
          img.remove();
          card.insertBefore(make("p", "ogc-note ogc-quicklook-error", "No quick-look: " + err.message), card.children[1] || null);
        });
      }
      var props = make("table", "ogc-item-properties");
      var shown = Object.assign({}, item.properties);
      if (item.data_asset && item.assets[item.data_asset]) shown["asset " + item.data_asset] = item.assets[item.data_asset].href;
      Object.keys(shown).sort().forEach(function (k) {
        var v = shown[k];
        if (v !== null && typeof v === "object") v = JSON.stringify(v);
        var tr = make("tr");
        tr.appendChild(make("td", null, k));
        var td = make("td", null, String(v).length > 300 ? String(v).slice(0, 300) + "\u2026" : v);
        tr.appendChild(td);
        props.appendChild(tr);
      });
      card.appendChild(props);
      list.appendChild(card);
    });
    if (map) {
      setTimeout(function () {
        map.invalidateSize();
        var b = state.layers.getBounds();
        if (b.isValid()) map.fitBounds(b.pad(0.1));
      }, 0);
    }
  }

  /* ------------------------------------------------------------------ routing */

  function segment(value) {
    try { return decodeURIComponent(value); } catch (e) { return value; }
  }

  function route() {
    clearTimeout(state.timer);
    showError(null);
    var hash = window.location.hash.replace(/^#/, "");
    var m = hash.match(/^job\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]*)$/);
    if (m) {
      var mapIndex = segment(m[4]);
      if (!/^-?\d+$/.test(mapIndex)) mapIndex = "-1"; // "{MAP_INDEX}" left as it is for an unmapped task
      state.view = "job";
      state.jobKey = [segment(m[1]), segment(m[2]), segment(m[3]), mapIndex];
      state.itemsLoadedFor = null;
      $("ogc-list-view").hidden = true;
      $("ogc-job-view").hidden = true;
      document.body.dataset.view = "job";
      loadJob();
    } else {
      state.view = "list";
      $("ogc-job-view").hidden = true;
      $("ogc-list-view").hidden = false;
      document.body.dataset.view = "list";
      loadList();
    }
  }

  ["ogc-filter-dag", "ogc-filter-status", "ogc-filter-process"].forEach(function (id) {
    $(id).addEventListener("change", function () { clearTimeout(state.timer); loadList(); });
  });
  $("ogc-back").addEventListener("click", function (ev) { ev.preventDefault(); window.location.hash = ""; });
  window.addEventListener("hashchange", route);
  route();
})();

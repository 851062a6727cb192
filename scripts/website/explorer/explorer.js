// The window-and-mask explorer. This script only displays and selects: every number it shows
// (windows, roll, regions, mask, index, bias) was computed by minswin when the site was built
// (scripts/website/explorer_data.py) and is read from explorer/data/*.js.
(function () {
  "use strict";
  var INDEX = window.MINSWIN_EXPLORER.index;
  var state = { key: null, token: null, block: null };
  var $ = function (id) { return document.getElementById(id); };

  // ------------------------------------------------------------------ loading data files
  var loading = {};
  function loadScript(src) {
    if (!loading[src]) {
      loading[src] = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = "explorer/" + src;
        s.onload = resolve;
        s.onerror = function () { reject(new Error("could not load " + src)); };
        document.head.appendChild(s);
      });
    }
    return loading[src];
  }
  function caseData(key) {
    return loadScript(INDEX.files[key]).then(function () { return window.MINSWIN_CASES[key]; });
  }

  // ------------------------------------------------------------------ menus
  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = text;
    select.appendChild(o);
  }
  function keyOf(H, W, M, S) { return H + "x" + W + "-w" + M + "-s" + S; }
  function chosenKey() {
    var hw = $("map").value.split("x");
    return keyOf(hw[0], hw[1], $("window").value, $("shift").value);
  }
  function fillShifts(M, keep) {
    var select = $("shift");
    select.innerHTML = "";
    for (var s = 0; s < Number(M); s++) {
      option(select, s, s === 0 ? "0 (no shift: W-MSA)" : String(s) + (s === Math.floor(M / 2) ? " (M/2, as Swin)" : ""));
    }
    select.value = String(Math.min(Number(keep), Number(M) - 1));
  }
  function buildMenus() {
    INDEX.maps.forEach(function (m) { option($("map"), m.H + "x" + m.W, m.label); });
    INDEX.windows.forEach(function (M) { option($("window"), M, M + "x" + M); });
    var d = INDEX["default"];
    $("map").value = d.H + "x" + d.W;
    $("window").value = String(d.window);
    fillShifts(d.window, d.shift);
    $("map").addEventListener("change", show);
    $("window").addEventListener("change", function () {
      fillShifts($("window").value, Math.floor(Number($("window").value) / 2));
      show();
    });
    $("shift").addEventListener("change", show);
    $("block").addEventListener("change", function () {
      state.block = Number($("block").value);
      showBias(window.MINSWIN_CASES[state.key]);
    });
  }

  // ------------------------------------------------------------------ the two grids
  function rc(t, C) { return "(" + Math.floor(t / C.used.padded[1]) + ", " + (t % C.used.padded[1]) + ")"; }

  function buildGrid(el, C, tokenAt, label) {
    var Hp = C.used.padded[0], Wp = C.used.padded[1];
    el.innerHTML = "";
    el.style.gridTemplateColumns = "repeat(" + Wp + ", minmax(0, 1fr))";
    el.classList.toggle("small", Wp <= 16);
    el.classList.toggle("tiny", Wp > 32);
    var frag = document.createDocumentFragment();
    for (var q = 0; q < Hp * Wp; q++) {
      var t = tokenAt(q), p = C.after_of[t], region = C.region_of[p], w = C.window_of[p];
      var b = document.createElement("button");
      b.type = "button";
      b.className = "cell";
      b.tabIndex = -1;
      b.dataset.t = t;
      b.dataset.r = Math.floor(q / Wp);
      b.dataset.c = q % Wp;
      b.style.background = INDEX.region_colours[region % INDEX.region_colours.length];
      if (C.padding[t]) { b.classList.add("pad"); }
      // window borders: where the neighbour belongs to another window
      var right = (q % Wp) + 1 < Wp ? C.window_of[C.after_of[tokenAt(q + 1)]] : -1;
      var below = q + Wp < Hp * Wp ? C.window_of[C.after_of[tokenAt(q + Wp)]] : -1;
      if (right !== w) { b.classList.add("edge-right"); }
      if (below !== w) { b.classList.add("edge-bottom"); }
      if (q % Wp === 0) { b.classList.add("edge-left"); }
      if (q < Wp) { b.classList.add("edge-top"); }
      b.textContent = Wp <= 16 ? String(region) : "";
      b.setAttribute("aria-label", label + " row " + b.dataset.r + ", column " + b.dataset.c +
                     ", region " + region + ", window " + w + (C.padding[t] ? ", padding" : ""));
      frag.appendChild(b);
    }
    el.appendChild(frag);
  }

  function wireGrid(el) {
    el.addEventListener("click", function (e) {
      var b = e.target.closest(".cell");
      if (b) { select(Number(b.dataset.t), el); }
    });
    el.addEventListener("keydown", function (e) {
      var C = window.MINSWIN_CASES[state.key];
      var b = e.target.closest(".cell");
      if (!C || !b) { return; }
      var Hp = C.used.padded[0], Wp = C.used.padded[1];
      var r = Number(b.dataset.r), c = Number(b.dataset.c);
      var moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1],
                    Home: [0, -Wp], End: [0, Wp], PageUp: [-Hp, 0], PageDown: [Hp, 0] };
      var m = moves[e.key];
      if (!m) { return; }
      e.preventDefault();
      r = Math.max(0, Math.min(Hp - 1, r + m[0]));
      c = Math.max(0, Math.min(Wp - 1, c + m[1]));
      var next = el.querySelector('.cell[data-r="' + r + '"][data-c="' + c + '"]');
      select(Number(next.dataset.t), el);
    });
  }

  // ------------------------------------------------------------------ selecting a token
  function select(t, focusGrid) {
    var C = window.MINSWIN_CASES[state.key];
    state.token = t;
    var p = C.after_of[t], w = C.window_of[p], n = C.slot_of[p];
    var keys = C.window_tokens[w], row = C.masks[C.window_mask[w]][n];
    var status = {};
    keys.forEach(function (k, j) { status[k] = row[j] === 0 ? "key-ok" : "key-masked"; });
    ["grid-before", "grid-after"].forEach(function (id) {
      var el = $(id);
      el.classList.add("has-selection");
      Array.prototype.forEach.call(el.children, function (b) {
        var k = Number(b.dataset.t);
        b.classList.remove("sel", "key-ok", "key-masked");
        if (status[k]) { b.classList.add(status[k]); }
        if (k === t) { b.classList.add("sel"); }
        b.tabIndex = k === t ? 0 : -1;
        b.setAttribute("aria-pressed", k === t ? "true" : "false");
      });
    });
    if (focusGrid) {
      var cell = focusGrid.querySelector('.cell[data-t="' + t + '"]');
      if (cell) { cell.focus(); }
    }
    var attended = row.filter(function (v) { return v === 0; }).length;
    $("detail-token").textContent = rc(t, C) + (C.padding[t] ? " (padding)" : "");
    $("detail-before").textContent = "row, column " + rc(t, C) +
      (C.padding[t] ? ": a zero token added by the padding, attended like any other and cropped away after attention" : "");
    $("detail-after").textContent = "row, column " + rc(p, C);
    $("detail-window").textContent = String(w) + " of " + C.used.windows[0] * C.used.windows[1] +
      " (windows numbered row by row over the rolled map)";
    $("detail-slot").textContent = "n = " + n + " of " + C.used.tokens_per_window +
      " (reading order inside the window)";
    $("detail-region").textContent = String(C.region_of[p]);
    $("detail-attends").textContent = attended + " of " + row.length + " keys of its window" +
      (attended < row.length ? " (" + (row.length - attended) + " masked)" : "");
    document.body.dataset.token = String(t);
    rowTable($("mask-row"), C, keys, row, function (v) { return v === 0 ? "0" : String(v).replace("-", "\u2212"); },
             function (v) { return v === 0 ? "ok" : "masked"; });
    rowTable($("index-row"), C, keys, C.index[n], String, function () { return ""; });
    showBias(C);
  }

  // one row of N numbers laid out as the M x M window it belongs to
  function rowTable(table, C, keys, values, text, cls, colour) {
    var M = C.used.window;
    table.innerHTML = "";
    for (var r = 0; r < M; r++) {
      var tr = document.createElement("tr");
      for (var c = 0; c < M; c++) {
        var j = r * M + c, td = document.createElement("td");
        td.dataset.j = j;
        td.dataset.value = String(values[j]);
        td.textContent = text(values[j]);
        var k = cls(values[j]);
        if (k) { td.className = k; }
        if (colour) { td.style.background = colour(values[j]); }
        td.title = "key n = " + j + ", token " + rc(keys[j], C);
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    table.setAttribute("aria-label", C.used.window + " by " + C.used.window + " row");
  }

  // ------------------------------------------------------------------ the trained bias
  function showBias(C) {
    var B = window.MINSWIN_BIAS && window.MINSWIN_BIAS.bias;
    var holder = $("bias-rows");
    holder.innerHTML = "";
    if (!B || state.token === null) { return; }
    var block = B.blocks[state.block];
    if (block.window !== C.used.window) {
      $("bias-note").textContent = B.model + " was trained with " + block.window + "x" +
        block.window + " windows: its bias has no row for a " + C.used.window + "x" +
        C.used.window + " window. Choose window " + block.window + " to see it.";
      return;
    }
    var n = C.slot_of[C.after_of[state.token]], keys = C.window_tokens[C.window_of[C.after_of[state.token]]];
    $("bias-note").textContent = "The gathered bias B[head, n, :] that " + block.name +
      " adds to this query's logits, one " + block.window + "x" + block.window +
      " table per head (numbers rounded to 2 decimals; red above 0, blue below).";
    block.bias.forEach(function (head, h) {
      var row = head[n];
      var big = Math.max.apply(null, row.map(Math.abs)) || 1;
      var fig = document.createElement("figure");
      var cap = document.createElement("figcaption");
      cap.textContent = "head " + h;
      var table = document.createElement("table");
      table.className = "row-table bias-table";
      table.dataset.head = h;
      rowTable(table, C, keys, row, function (v) { return v.toFixed(2); }, function () { return ""; },
               function (v) {
                 var a = Math.abs(v) / big;
                 return v >= 0 ? "rgba(214, 39, 40, " + (0.15 + 0.6 * a) + ")"
                               : "rgba(31, 119, 180, " + (0.15 + 0.6 * a) + ")";
               });
      fig.appendChild(cap);
      fig.appendChild(table);
      holder.appendChild(fig);
    });
  }

  // ------------------------------------------------------------------ one setting
  function show() {
    var key = chosenKey();
    if (!INDEX.files[key]) {
      $("status").textContent = "This setting was not exported.";
      return;
    }
    document.body.dataset.ready = "";
    caseData(key).then(function (C) {
      var keepR = null, keepC = null;
      if (state.token !== null && state.key) {
        var old = window.MINSWIN_CASES[state.key];
        keepR = Math.floor(state.token / old.used.padded[1]);
        keepC = state.token % old.used.padded[1];
      }
      state.key = key;
      var u = C.used;
      $("status").textContent = "The block uses a " + u.window + "x" + u.window + " window, shift (" +
        u.shift[0] + ", " + u.shift[1] + ") on a " + u.padded[0] + "x" + u.padded[1] + " map: " +
        u.windows[0] * u.windows[1] + " windows (" + u.windows[0] + "x" + u.windows[1] + ") of " +
        u.tokens_per_window + " tokens, " + u.regions + (u.regions === 1 ? " region." : " regions.");
      $("why").innerHTML = "";
      C.why.forEach(function (s) {
        var li = document.createElement("li");
        li.textContent = s;
        $("why").appendChild(li);
      });
      buildGrid($("grid-before"), C, function (q) { return q; }, "before the roll:");
      buildGrid($("grid-after"), C, function (q) { return C.token_at[q]; }, "after the roll:");
      var t;
      if (keepR !== null && keepR < u.padded[0] && keepC < u.padded[1]) {
        t = keepR * u.padded[1] + keepC;
      } else {
        var last = C.window_tokens[C.window_tokens.length - 1];
        t = last[0];                        // the first token of the last window
      }
      select(t, null);
      document.body.dataset.case = key;
      document.body.dataset.ready = "yes";
    }, function (err) {
      $("status").textContent = String(err);
    });
  }

  function legend() {
    var el = $("legend");
    INDEX.region_colours.forEach(function (colour, k) {
      var s = document.createElement("span");
      s.className = "swatch";
      s.innerHTML = '<i style="background:' + colour + '"></i>region ' + k;
      el.appendChild(s);
    });
    [["sel", "the query token (click or arrow keys)"],
     ["key-ok", "full colour: a key of its window it attends to (mask 0)"],
     ["key-masked", "darkened: a key of its window it may not attend to (mask \u2212100)"],
     ["outside", "faded: tokens of other windows"], ["pad", "hatched: padding token"]]
      .forEach(function (kv) {
        var s = document.createElement("span");
        s.className = "swatch";
        s.innerHTML = '<i class="cell ' + kv[0] + '"></i>' + kv[1];
        el.appendChild(s);
      });
  }

  function start() {
    buildMenus();
    legend();
    wireGrid($("grid-before"));
    wireGrid($("grid-after"));
    loadScript(INDEX.bias_file).then(function () {
      var blocks = window.MINSWIN_BIAS.bias.blocks;
      blocks.forEach(function (b, i) { option($("block"), i, b.label); });
      // first the shifted block of the explainer's 8x8 map, where the mask matters
      state.block = Math.max(0, blocks.map(function (b) { return b.name; }).indexOf("layers.0.blocks.1"));
      $("block").value = String(state.block);
      show();
    });
  }
  start();
})();

// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): $('Node').item, .itemMatching(i) and .pairedItem(i) of the Code node API
// (library/n8n.js), which hands it what it reads of the task. Apart because it is half of
// that module's compile time, and a worker compiles the API for every task's fresh context.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  const isArray = Array.isArray, keys = Object.keys;
  return function pairedItems(task) {
    const { data, runData, nodeName, input, hostError, outputOf, object, hasOwn } = task;
    // $('Node').item, .itemMatching(i) and .pairedItem(i) as n8n-workflow's WorkflowDataProxy
    // resolves them (n8n 2.41): the input item's pairedItem names an item of the node before
    // (of the input it came in on), whose own pairedItem names an item of the node before that,
    // and so on back to the node named; an item made of several items follows each of them and
    // resolves when they all lead to one item. A node's items are its run's, else (a manual run)
    // its pinned data's. The errors are n8n's as a Code node words them, "Unpin 'X' to execute"
    // where the node they blame is pinned in a manual run.
    const own = (o, k) => object(o) && hasOwn(o, k);
    const pinData = data.workflowMode === "manual" && object(data.pinData) ? data.pinData : {};
    const pinnedOf = (name) => (own(pinData, name) ? pinData[name] : undefined);
    function pairedError(message, cause) {
      return hostError(cause !== undefined && pinnedOf(cause) ? "Unpin '" + cause + "' to execute" : message);
    }
    function missingPaired(cause, method) {
      return hostError(pinnedOf(cause)
        ? "Using the " + method + " method doesn't work with pinned data in this scenario. "
          + "Please unpin '" + cause + "' and try again."
        : "Paired item data for " + method + " from node '" + cause + "' is unavailable. "
          + "Ensure '" + cause + "' is providing the required output.");
    }
    // the nodes before `name` along main connections (n8n's Workflow.getParentNodes)
    function parentsOf(name) {
      const into = new Map();
      const connections = object(data.connections) ? data.connections : {};
      for (const src of keys(connections)) {
        const main = object(connections[src]) && isArray(connections[src].main) ? connections[src].main : [];
        for (const outs of main) {
          for (const c of isArray(outs) ? outs : []) {
            if (!object(c) || typeof c.node !== "string") continue;
            if (!into.has(c.node)) into.set(c.node, []);
            into.get(c.node).push(src);
          }
        }
      }
      const seen = new Set(), todo = [name];
      while (todo.length) {
        for (const p of into.get(todo.pop()) || []) {
          if (p !== name && !seen.has(p)) { seen.add(p); todo.push(p); }
        }
      }
      return seen;
    }
    function taskOf(source) {
      const runs = own(runData, source.previousNode) ? runData[source.previousNode] : undefined;
      const run = runs && runs[source.previousNodeRun || 0];
      if (run) return run;
      const pin = pinnedOf(source.previousNode);
      return pin ? { data: { main: [pin] }, source: [] } : undefined;
    }
    const normalizePaired = (p) => (p === null || p === undefined ? []
      : (isArray(p) ? p : [p]).map((x) => (typeof x === "number" ? { item: x } : x)));
    function resolvePaired(dest, incoming, initial, method, nodeBeforeLast, memo) {
      const paired = typeof initial === "number" ? { item: initial } : initial;
      const source = paired.sourceOverwrite || incoming;
      if (!source) throw pairedError("Data not found", nodeBeforeLast);
      // one resolution per (node run output, item): a DAG's shared ancestors once each
      const key = (source.previousNodeRun ?? 0) + "|" + (source.previousNodeOutput ?? 0) + "|"
                  + paired.item + "|" + source.previousNode;
      let entry = memo.get(key);
      if (!entry) {
        try {
          entry = { ok: true, result: resolveUncached(dest, source, paired, method, nodeBeforeLast, memo) };
        } catch (e) {
          entry = { ok: false, error: e };
        }
        memo.set(key, entry);
      }
      if (entry.ok) return entry.result;
      throw entry.error;
    }
    function resolveUncached(dest, source, paired, method, nodeBeforeLast, memo) {
      const task = taskOf(source);
      const main = task && task.data && task.data.main;
      const outputs = main ? main[source.previousNodeOutput || 0] : undefined;
      if (!outputs) throw pairedError("Missing output", nodeBeforeLast);
      const item = outputs[paired.item];
      if (source.previousNode === dest) {
        if (paired.item >= outputs.length) throw missingPaired(source.previousNode, method);
        return item;
      }
      if (item === undefined || item === null) {
        throw hostError("Cannot read properties of " + item + " (reading 'pairedItem')");
      }
      const next = normalizePaired(item.pairedItem);
      if (!next.length) throw missingPaired(source.previousNode, method);
      const sources = (task && task.source) || [];
      const results = [];
      for (const np of next) {
        const input = np.input ?? 0;
        if (input >= sources.length) continue;
        try {
          results.push({ ok: true, result: resolvePaired(dest, np.sourceOverwrite ?? sources[input],
            Object.assign({}, np, { input }), method, source.previousNode, memo) });
        } catch (e) {
          results.push({ ok: false, error: e });
        }
      }
      if (results.every((r) => !r.ok)) {
        // none to follow: n8n's own code then reads an error of none
        if (!results.length) throw hostError("Cannot read properties of undefined (reading 'error')");
        throw results[0].error;
      }
      const matched = results.filter((r) => r.ok).map((r) => r.result);
      if (matched.some((r) => r !== matched[0])) throw pairedError("Multiple matches", dest);
      return matched[0];
    }
    // what `$('target').<method>` checks as it is read: the node comes before this one, and ran
    function pairedItemOf(target, method, ownIndex) {
      if (!parentsOf(nodeName).has(target)) throw pairedError("Invalid expression", target);
      if (!own(runData, target) && !pinnedOf(target)) {
        throw hostError("Node '" + target + "' hasn't been executed");
      }
      return function (itemIndex) {
        if (itemIndex === undefined) {
          if (method === "itemMatching") throw hostError("Missing item index for .itemMatching()");
          itemIndex = ownIndex;
        }
        if (!input.length) {
          // no input (the node before has not run): the node's own items, by index
          const pin = pinnedOf(target);
          if (pin) return pin[itemIndex];
          const out = outputOf(target);
          if (out && out.items.length) {
            if (itemIndex >= out.items.length) {
              throw hostError('"' + target + '" node has ' + out.items.length + " item(s) but "
                              + "expression references item " + itemIndex);
            }
            return out.items[itemIndex];
          }
        }
        const it = input[itemIndex];
        if (!it) throw hostError("Can\u2019t get data");
        const p = it.pairedItem;
        if (p === undefined) throw missingPaired(nodeName, method);
        if (p === null) throw hostError("Cannot read properties of null (reading 'input')");
        const sources = data.connectionInputSource;
        if (!object(sources) || !isArray(sources.main)) throw hostError("Can\u2019t get data");
        return resolvePaired(target, sources.main[p.input || 0] ?? sources.main[0], p, method,
                             undefined, new Map());
      };
    }
    return pairedItemOf;
  };
})

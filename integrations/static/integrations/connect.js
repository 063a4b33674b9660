// The connect form: once a token is pasted, offer its workspaces to pick from (the GID
// field stays editable, and without JavaScript the GID is typed as before).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-workspaces-url]")) {
    const token = form.querySelector("input[name=token]");
    const gid = form.querySelector("input[name=workspace_gid]");
    const status = form.querySelector(".pilot-workspace-status");
    if (!token || !gid || !status) continue;
    const picker = document.createElement("select");
    picker.id = "id_workspace_picker";
    picker.hidden = true;
    picker.setAttribute("aria-label", "Workspace");
    gid.insertAdjacentElement("beforebegin", picker);
    picker.addEventListener("change", () => { if (picker.value) gid.value = picker.value; });
    let asked = "";
    const lookup = async () => {
      const value = token.value.trim();
      if (!value || value === asked) return;
      asked = value;
      status.textContent = "Looking up the token's workspaces…";
      const body = new FormData();
      body.append("token", value);
      body.append("csrfmiddlewaretoken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
      try {
        const response = await fetch(form.dataset.workspacesUrl, { method: "POST", body, credentials: "same-origin" });
        const answer = await response.json();
        if (answer.error) { status.textContent = answer.error + " You can also type the workspace GID."; picker.hidden = true; return; }
        picker.replaceChildren(new Option("— pick a workspace —", ""));
        for (const w of answer.workspaces) picker.add(new Option(`${w.name} (${w.gid})`, w.gid, false, w.gid === gid.value));
        picker.hidden = answer.workspaces.length === 0;
        // One workspace is picked for the person, unless they already typed a GID.
        if (answer.workspaces.length === 1 && !gid.value.trim()) { picker.value = gid.value = answer.workspaces[0].gid; }
        status.textContent = answer.workspaces.length
          ? `This token can connect ${answer.workspaces.length} workspace${answer.workspaces.length === 1 ? "" : "s"}: pick one, or type a GID.`
          : "This token's user belongs to no workspace.";
      } catch (error) {
        status.textContent = "Could not look up the workspaces; type the workspace GID.";
      }
    };
    token.addEventListener("change", lookup);
    token.addEventListener("paste", () => setTimeout(lookup, 0));
  }
});

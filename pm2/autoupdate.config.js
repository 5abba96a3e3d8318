// pm2 start pm2/autoupdate.config.js --only resi-validator   (or --only resi-miner; edit the wallet names first)
// pm2 runs scripts/autoupdate.py, which runs the neuron as its child: every 5 minutes it looks at the branch
// this checkout follows; when it moved, it pulls, reinstalls, runs the neuron's --check from the new code and
// restarts the neuron; a failed step rolls back to the previous commit and the neuron keeps running it.
// Use it instead of pm2/validator.config.js or pm2/miner.config.js, not beside them.
const neuron = (script, flags) =>
  ["--interval", "300", "--", ".venv/bin/python", script, "--netuid", "46", "--subtensor.network", "finney",
   ...flags].join(" ");

const common = {
  script: "scripts/autoupdate.py",
  interpreter: ".venv/bin/python",
  env: {
    // RESI_PROXY_URL: "http://user:password@proxy.example:8080",
    RESI_API_URL: "https://api.resilabs.com",
    PYTHONUNBUFFERED: "1",
  },
  // The updater gives the neuron 30 s to stop (SIGTERM), then SIGKILL: give the pair more than that.
  kill_timeout: 45000,
  autorestart: true,
  // The updater exits with the neuron's own exit code. 2: the set-up needs fixing (the last log line says
  // how), no restart loop for that; 3: the neuron's watchdog saw no progress, restart it.
  stop_exit_codes: [2],
  max_restarts: 50,
  restart_delay: 10000,
};

module.exports = {
  apps: [
    {
      ...common,
      name: "resi-validator",
      args: neuron("neurons/validator.py", ["--wallet.name", "validator", "--wallet.hotkey", "default",
                                            "--metrics.port", "9100"]),
    },
    {
      ...common,
      name: "resi-miner",
      args: neuron("neurons/miner.py", ["--wallet.name", "miner", "--wallet.hotkey", "default",
                                        "--metrics.port", "9101"]),
    },
  ],
};

// pm2 start pm2/miner.config.js   (edit the wallet names first)
// Secrets (proxy credentials) come from the environment, never the command line.
module.exports = {
  apps: [
    {
      name: "resi-miner",
      script: "neurons/miner.py",
      interpreter: ".venv/bin/python",
      args: [
        "--netuid", "46",
        "--subtensor.network", "finney",
        "--wallet.name", "miner",
        "--wallet.hotkey", "default",
        "--miner.concurrency", "4",
        "--miner.upload_margin", "900",
      ].join(" "),
      env: {
        // RESI_PROXY_URL: "http://user:password@proxy.example:8080",
        RESI_API_URL: "https://api.resilabs.com",
        PYTHONUNBUFFERED: "1",
      },
      // The miner stops within --miner.shutdown_grace (20 s) after SIGINT: give it more than that.
      kill_timeout: 30000,
      autorestart: true,
      // Exit code 2: the set-up needs fixing (not registered, no permit, unreadable keys); the last log line
      // says how. No restart loop for that.
      stop_exit_codes: [2],
      max_restarts: 50,
      restart_delay: 10000,
    },
  ],
};

// pm2 start pm2/validator.config.js   (edit the wallet names first)
module.exports = {
  apps: [
    {
      name: "resi-validator",
      script: "neurons/validator.py",
      interpreter: ".venv/bin/python",
      args: [
        "--netuid", "46",
        "--subtensor.network", "finney",
        "--wallet.name", "validator",
        "--wallet.hotkey", "default",
        "--validator.grace", "600",
      ].join(" "),
      env: {
        // RESI_PROXY_URL: "http://user:password@proxy.example:8080",
        RESI_API_URL: "https://api.resilabs.com",
        PYTHONUNBUFFERED: "1",
      },
      // Scores are committed per epoch in SQLite; an interrupted epoch resumes on restart.
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

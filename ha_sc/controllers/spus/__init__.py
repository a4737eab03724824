"""The SPU controller: each SPU's health and resolution from its connection
(``health.reduce_spu_status``), and what the other controllers read of SPUs."""
